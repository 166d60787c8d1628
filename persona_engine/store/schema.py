"""The database schema, as numbered and named migrations applied in order.

Ids are integers everywhere (joins on 10M orders stay fast); the id a source system used
(an invoice number, a Shopify order name, a customer email hash) is kept in `external_id`.
Large fact tables carry no PRIMARY KEY: uniqueness is enforced by whoever writes them
(generator, importer), which keeps bulk loads of millions of rows fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


CORE_TABLES = """
CREATE TABLE shop_settings (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR
);

CREATE TABLE customers (
    customer_id         BIGINT PRIMARY KEY,
    external_id         VARCHAR,
    created_at          TIMESTAMP,
    first_name          VARCHAR,
    last_name           VARCHAR,
    email               VARCHAR,
    age                 SMALLINT,
    gender              VARCHAR,
    marital_status      VARCHAR,
    city                VARCHAR,
    region              VARCHAR,
    country             VARCHAR,
    education           VARCHAR,
    occupation          VARCHAR,
    income              DOUBLE,
    interests           VARCHAR[],
    acquisition_channel VARCHAR,
    preferred_device    VARCHAR,
    newsletter_opt_in   BOOLEAN,
    consent_analytics   BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE products (
    product_id  BIGINT PRIMARY KEY,
    external_id VARCHAR,
    name        VARCHAR,
    category    VARCHAR,
    brand       VARCHAR,
    price       DOUBLE
);

CREATE TABLE orders (
    order_id       BIGINT NOT NULL,
    external_id    VARCHAR,
    customer_id    BIGINT,
    ordered_at     TIMESTAMP NOT NULL,
    channel        VARCHAR,
    device         VARCHAR,
    payment_method VARCHAR,
    amount         DOUBLE NOT NULL,
    discount       DOUBLE NOT NULL DEFAULT 0,
    status         VARCHAR NOT NULL,
    currency       VARCHAR
);

CREATE TABLE order_items (
    order_id   BIGINT NOT NULL,
    product_id BIGINT,
    quantity   INTEGER NOT NULL,
    unit_price DOUBLE NOT NULL
);

CREATE TABLE sessions (
    session_id       BIGINT NOT NULL,
    customer_id      BIGINT,
    started_at       TIMESTAMP NOT NULL,
    device           VARCHAR,
    source           VARCHAR,
    pages_viewed     INTEGER,
    duration_s       INTEGER,
    viewed_product   BOOLEAN,
    added_to_cart    BOOLEAN,
    checkout_started BOOLEAN,
    order_id         BIGINT
);

CREATE TABLE events (
    session_id  BIGINT,
    customer_id BIGINT,
    ts          TIMESTAMP NOT NULL,
    type        VARCHAR NOT NULL,
    product_id  BIGINT,
    category    VARCHAR,
    value       DOUBLE
);
"""

ANALYSIS_TABLES = """
CREATE TABLE customer_features (
    customer_id           BIGINT PRIMARY KEY,
    recency_days          INTEGER,
    frequency             INTEGER NOT NULL,
    monetary              DOUBLE NOT NULL,
    average_order_value   DOUBLE,
    tenure_days           INTEGER,
    orders_90d            INTEGER NOT NULL,
    sessions_90d          INTEGER NOT NULL,
    sessions_total        INTEGER NOT NULL,
    pages_per_session     DOUBLE,
    cart_abandonment_rate DOUBLE,
    discount_share        DOUBLE,
    return_rate           DOUBLE,
    mobile_share          DOUBLE,
    main_source           VARCHAR,
    favourite_category    VARCHAR,
    category_shares       MAP(VARCHAR, DOUBLE),
    preferred_weekday     SMALLINT,
    preferred_hour        SMALLINT,
    newsletter_opt_in     BOOLEAN,
    first_order_at        TIMESTAMP,
    last_order_at         TIMESTAMP,
    computed_at           TIMESTAMP NOT NULL
);

CREATE SEQUENCE clustering_run_ids START 1;

CREATE TABLE clustering_runs (
    run_id           INTEGER PRIMARY KEY DEFAULT nextval('clustering_run_ids'),
    created_at       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    method           VARCHAR NOT NULL,
    k                INTEGER NOT NULL,
    feature_set      VARCHAR NOT NULL,
    features         VARCHAR[] NOT NULL,
    params           JSON,
    seed             INTEGER,
    n_customers      INTEGER NOT NULL,
    silhouette       DOUBLE,
    stability        DOUBLE,
    k_scores         JSON,
    centroids        JSON,
    created_by       VARCHAR
);

CREATE TABLE cluster_assignments (
    run_id      INTEGER NOT NULL,
    customer_id BIGINT NOT NULL,
    cluster     INTEGER NOT NULL,
    silhouette  DOUBLE
);

CREATE TABLE cluster_profiles (
    run_id        INTEGER NOT NULL,
    cluster       INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    share         DOUBLE NOT NULL,
    revenue_share DOUBLE,
    silhouette    DOUBLE,
    profile       JSON,
    PRIMARY KEY (run_id, cluster)
);
"""

PERSONA_TABLES = """
CREATE SEQUENCE persona_ids START 1;

CREATE TABLE personas (
    persona_id           INTEGER PRIMARY KEY DEFAULT nextval('persona_ids'),
    name                 VARCHAR NOT NULL,
    nickname             VARCHAR,
    kind                 VARCHAR NOT NULL DEFAULT 'secondary',
    status               VARCHAR NOT NULL DEFAULT 'draft',
    avatar               VARCHAR,
    avatar_image         BLOB,
    avatar_mime          VARCHAR,
    quote                VARCHAR,
    bio                  VARCHAR,
    demographics         VARCHAR,
    goals                VARCHAR[],
    frustrations         VARCHAR[],
    motivations          VARCHAR[],
    buying_triggers      VARCHAR[],
    objections           VARCHAR[],
    preferred_channels   VARCHAR[],
    media_preferences    VARCHAR[],
    tech_affinity        VARCHAR,
    personal_context     VARCHAR,
    professional_context VARCHAR,
    brand_relationship   VARCHAR,
    day_in_the_life      VARCHAR,
    key_messages         VARCHAR[],
    success_factors      VARCHAR[],
    evidence             JSON,
    source_run_id        INTEGER,
    source_clusters      INTEGER[],
    centroid             JSON,
    version              INTEGER NOT NULL DEFAULT 1,
    created_at           TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at           TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_by           VARCHAR,
    last_validated_at    TIMESTAMP,
    deleted_at           TIMESTAMP
);

CREATE TABLE persona_history (
    persona_id INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    changed_by VARCHAR,
    field      VARCHAR NOT NULL,
    old_value  JSON,
    new_value  JSON
);

CREATE TABLE persona_members (
    persona_id  INTEGER NOT NULL,
    customer_id BIGINT NOT NULL,
    run_id      INTEGER
);

CREATE SEQUENCE persona_comment_ids START 1;

CREATE TABLE persona_comments (
    comment_id INTEGER PRIMARY KEY DEFAULT nextval('persona_comment_ids'),
    persona_id INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    author     VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    body       VARCHAR NOT NULL
);

CREATE TABLE persona_presence (
    persona_id INTEGER NOT NULL,
    user_name  VARCHAR NOT NULL,
    seen_at    TIMESTAMP NOT NULL,
    editing    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (persona_id, user_name)
);

CREATE SEQUENCE action_ids START 1;

CREATE TABLE actions (
    action_id   INTEGER PRIMARY KEY DEFAULT nextval('action_ids'),
    name        VARCHAR NOT NULL,
    description VARCHAR,
    persona_ids INTEGER[],
    archetypes  VARCHAR[],
    starts_on   DATE NOT NULL,
    ends_on     DATE,
    channel     VARCHAR,
    created_by  VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

BOOKKEEPING_TABLES = """
CREATE SEQUENCE import_ids START 1;

CREATE TABLE imports (
    import_id   INTEGER PRIMARY KEY DEFAULT nextval('import_ids'),
    started_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at TIMESTAMP,
    preset      VARCHAR NOT NULL,
    files       VARCHAR[] NOT NULL,
    file_hashes VARCHAR[],
    consent     VARCHAR,
    rows_read   BIGINT,
    status      VARCHAR NOT NULL,
    report      JSON
);

CREATE TABLE erasure_log (
    erased_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    erased_by  VARCHAR,
    rows_removed JSON
);

CREATE TABLE sample_truth (
    customer_id BIGINT PRIMARY KEY,
    archetype   VARCHAR NOT NULL
);

CREATE TABLE sample_effects (
    action_id       INTEGER NOT NULL,
    archetype       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    relative_effect DOUBLE NOT NULL
);
"""

# The consent rule lives here and only here: every analysis reads these views, never the
# raw tables. `analysis_*` hold consenting known customers only (customer analyses,
# exports); `shop_*` add anonymous/guest rows for shop-level totals. Rows of customers
# without analytics consent appear in neither.
CONSENT_VIEWS = """
CREATE VIEW analysis_customers AS
    SELECT * FROM customers WHERE consent_analytics;

CREATE VIEW analysis_orders AS
    SELECT o.* FROM orders o
    WHERE o.customer_id IN (SELECT customer_id FROM customers WHERE consent_analytics);

CREATE VIEW analysis_sessions AS
    SELECT s.* FROM sessions s
    WHERE s.customer_id IN (SELECT customer_id FROM customers WHERE consent_analytics);

CREATE VIEW shop_orders AS
    SELECT o.* FROM orders o
    WHERE o.customer_id IS NULL
       OR o.customer_id IN (SELECT customer_id FROM customers WHERE consent_analytics);

CREATE VIEW shop_sessions AS
    SELECT s.* FROM sessions s
    WHERE s.customer_id IS NULL
       OR s.customer_id IN (SELECT customer_id FROM customers WHERE consent_analytics);
"""

# Segment explorer (issue 4). Session features become NULL-able: a shop imported without
# session data has "unknown" sessions, not zero. The per-customer rollups are written with
# customer_features (same transaction) so that explorer charts aggregate ~1 row per
# customer and value instead of scanning raw orders and sessions on every filter change.
EXPLORER_TABLES = """
ALTER TABLE customer_features ALTER COLUMN sessions_90d DROP NOT NULL;
ALTER TABLE customer_features ALTER COLUMN sessions_total DROP NOT NULL;
ALTER TABLE customer_features ADD COLUMN main_device VARCHAR;
ALTER TABLE customer_features ADD COLUMN abandoned_carts_90d INTEGER;
ALTER TABLE customer_features ADD COLUMN last_active_at TIMESTAMP;
ALTER TABLE customer_features ADD COLUMN reference_date DATE;

CREATE TABLE customer_segments (
    customer_id BIGINT PRIMARY KEY,
    r_score     TINYINT,
    f_score     TINYINT,
    m_score     TINYINT,
    rfm_group   VARCHAR,
    segments    VARCHAR[] NOT NULL,
    computed_at TIMESTAMP NOT NULL
);

CREATE TABLE customer_session_mix (
    customer_id            BIGINT NOT NULL,
    device                 VARCHAR,
    source                 VARCHAR,
    sessions               INTEGER NOT NULL,
    sessions_90d           INTEGER NOT NULL,
    pages_viewed           BIGINT,
    sessions_with_pages    INTEGER NOT NULL,
    product_view_sessions  INTEGER NOT NULL,
    cart_sessions          INTEGER NOT NULL,
    checkout_sessions      INTEGER NOT NULL,
    order_sessions         INTEGER NOT NULL,
    abandoned_cart_sessions INTEGER NOT NULL,
    abandoned_carts_90d    INTEGER NOT NULL,
    first_session_at       TIMESTAMP NOT NULL,
    last_session_at        TIMESTAMP NOT NULL
);

CREATE TABLE customer_order_mix (
    customer_id    BIGINT NOT NULL,
    channel        VARCHAR,
    device         VARCHAR,
    payment_method VARCHAR,
    orders         INTEGER NOT NULL,
    revenue        DOUBLE NOT NULL
);

CREATE TABLE customer_order_hours (
    customer_id BIGINT NOT NULL,
    weekday     TINYINT NOT NULL,
    hour        TINYINT NOT NULL,
    orders      INTEGER NOT NULL,
    revenue     DOUBLE NOT NULL
);

CREATE TABLE customer_order_months (
    customer_id BIGINT NOT NULL,
    month       DATE NOT NULL,
    orders      INTEGER NOT NULL,
    revenue     DOUBLE NOT NULL
);

CREATE TABLE customer_category_revenue (
    customer_id BIGINT NOT NULL,
    category    VARCHAR,
    revenue     DOUBLE NOT NULL,
    quantity    BIGINT NOT NULL,
    orders      INTEGER NOT NULL
);
"""

# People allowed in when a credentials file is configured (synced from it at start-up).
# With no rows, nobody logs in and everyone who gives a display name is an editor.
APP_USERS = """
CREATE TABLE app_users (
    user_name     VARCHAR PRIMARY KEY,
    display_name  VARCHAR,
    role          VARCHAR NOT NULL,
    password_hash VARCHAR NOT NULL
);
"""

# One session rollup per (customer, device, source) had nearly as many rows as sessions;
# one by device and one by source are each far smaller and answer every explorer chart.
SESSION_ROLLUPS = """
DROP TABLE customer_session_mix;

CREATE TABLE customer_session_devices (
    customer_id             BIGINT NOT NULL,
    device                  VARCHAR,
    sessions                INTEGER NOT NULL,
    sessions_90d            INTEGER NOT NULL,
    pages_viewed            BIGINT,
    sessions_with_pages     INTEGER NOT NULL,
    product_view_sessions   INTEGER NOT NULL,
    cart_sessions           INTEGER NOT NULL,
    checkout_sessions       INTEGER NOT NULL,
    order_sessions          INTEGER NOT NULL,
    abandoned_cart_sessions INTEGER NOT NULL,
    abandoned_carts_90d     INTEGER NOT NULL,
    first_session_at        TIMESTAMP NOT NULL,
    last_session_at         TIMESTAMP NOT NULL
);

CREATE TABLE customer_session_sources (
    customer_id             BIGINT NOT NULL,
    source                  VARCHAR,
    sessions                INTEGER NOT NULL,
    cart_sessions           INTEGER NOT NULL,
    abandoned_cart_sessions INTEGER NOT NULL,
    order_sessions          INTEGER NOT NULL
);
"""

# Order mix as one row per customer, dimension and value: counting customers per value is
# then a plain count, not a DISTINCT over the combined (channel, device, payment) rows; and
# each month row carries the customer's first-order month, so cohorts need no join.
ORDER_ROLLUPS = """
DROP TABLE customer_order_mix;

CREATE TABLE customer_order_values (
    customer_id BIGINT NOT NULL,
    dimension   VARCHAR NOT NULL,
    value       VARCHAR,
    orders      INTEGER NOT NULL,
    revenue     DOUBLE NOT NULL
);

ALTER TABLE customer_order_months ADD COLUMN cohort DATE;
"""

# Clustering (issue 5): each customer's distance to its cluster's centre (the "most
# representative customers" of a persona are the closest), and the 2-D projection of a
# sample, stored with the run so that the scatter shows what the run saw.
CLUSTERING_EXTRAS = """
ALTER TABLE cluster_assignments ADD COLUMN distance DOUBLE;

CREATE TABLE cluster_projection (
    run_id      INTEGER NOT NULL,
    customer_id BIGINT NOT NULL,
    cluster     INTEGER NOT NULL,
    x           DOUBLE NOT NULL,
    y           DOUBLE NOT NULL
);
"""

# Explorer cubes: every chart's aggregate per cell of the five filter dimensions (country,
# region, acquisition channel, main device, RFM group). A filter on these dimensions is then
# a scan of a few thousand rows per chart; segment, persona and date filters use the
# per-customer rollups. Customer counts add up across cells: a customer is in one cell.
EXPLORER_CUBES = """
CREATE TABLE cube_stats (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    customers           BIGINT NOT NULL,
    buyers              BIGINT NOT NULL,
    visitors            BIGINT NOT NULL,
    carters             BIGINT NOT NULL,
    categorised         BIGINT NOT NULL,
    orders              BIGINT NOT NULL,
    revenue             DOUBLE NOT NULL
);

CREATE TABLE cube_demographics (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    field               VARCHAR NOT NULL,
    value               VARCHAR,
    customers           BIGINT NOT NULL
);

CREATE TABLE cube_rfm (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    r_score             TINYINT NOT NULL,
    f_score             TINYINT NOT NULL,
    customers           BIGINT NOT NULL,
    revenue             DOUBLE NOT NULL
);

CREATE TABLE cube_segments (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    segment             VARCHAR NOT NULL,
    customers           BIGINT NOT NULL
);

CREATE TABLE cube_sessions (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    dimension           VARCHAR NOT NULL,
    value               VARCHAR,
    customers           BIGINT NOT NULL,
    cart_customers      BIGINT NOT NULL,
    sessions            BIGINT NOT NULL,
    product_view        BIGINT,
    cart                BIGINT NOT NULL,
    checkout            BIGINT,
    "order"             BIGINT NOT NULL,
    abandoned           BIGINT NOT NULL
);

CREATE TABLE cube_order_mix (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    dimension           VARCHAR NOT NULL,
    value               VARCHAR,
    customers           BIGINT NOT NULL,
    orders              BIGINT NOT NULL,
    revenue             DOUBLE NOT NULL
);

CREATE TABLE cube_categories (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    category            VARCHAR,
    customers           BIGINT NOT NULL,
    revenue             DOUBLE NOT NULL,
    quantity            BIGINT NOT NULL
);

CREATE TABLE cube_weekday_hour (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    weekday             TINYINT NOT NULL,
    hour                TINYINT NOT NULL,
    orders              BIGINT NOT NULL,
    revenue             DOUBLE NOT NULL
);

CREATE TABLE cube_months (
    country             VARCHAR,
    region              VARCHAR,
    acquisition_channel VARCHAR,
    main_device         VARCHAR,
    rfm_group           VARCHAR,
    cohort              DATE NOT NULL,
    month               DATE NOT NULL,
    customers           BIGINT NOT NULL,
    revenue             DOUBLE NOT NULL
);
"""

_CUBE_TABLES = (
    "cube_stats", "cube_demographics", "cube_rfm", "cube_segments", "cube_sessions",
    "cube_order_mix", "cube_categories", "cube_weekday_hour", "cube_months",
)

# Explorer cubes sliced by behavioural segment: each cube row gets the segment it counts
# (NULL: every customer of the cell, the rows of before). A customer counts once in the
# NULL rows and once more per segment it is in, so a one-segment filter is read from the
# rows of that segment. The cubes are rebuilt by the next feature computation; until then
# there are no segment rows and a segment filter reads the customers' rows.
CUBE_SEGMENT_SLICES = "\n".join(
    f"ALTER TABLE {table} ADD COLUMN filter_segment VARCHAR;"
    for table in _CUBE_TABLES
)

# Explorer cubes keyed by each customer's whole set of behavioural segments instead of one
# slice per segment: a customer counts once in the cubes, and any choice of segments (a
# customer in any of them) reads the cells whose set has one of them. Sets are numbered in
# cube_segment_sets. The slices of migration 12 are dropped; the rows left (every customer
# once, no set) still answer filters without a segment until features are recomputed.
_SEGMENT_SET_STEPS = (
    "DELETE FROM {table} WHERE filter_segment IS NOT NULL; ALTER TABLE {table} DROP COLUMN filter_segment; "
    "ALTER TABLE {table} ADD COLUMN segment_set INTEGER;"
)
CUBE_SEGMENT_SETS = "CREATE TABLE cube_segment_sets (segment_set INTEGER PRIMARY KEY, segments VARCHAR[] NOT NULL);\n" + "\n".join(
    _SEGMENT_SET_STEPS.format(table=table)
    for table in _CUBE_TABLES
)

# Explorer cubes of each persona: the cubes' rows for the persona's members only, per
# segment set, with the persona's id (the other cell columns stay NULL), so that a filter on
# one persona reads them. Written with the persona's members (and rebuilt with the cubes);
# personas made before have none until features are recomputed, and a filter on them reads
# the customers' rows until then.
PERSONA_CUBES = "\n".join(
    f"CREATE TABLE persona_{table} AS SELECT * FROM {table} LIMIT 0; "  # noqa: S608 - constant table names
    f"ALTER TABLE persona_{table} ADD COLUMN persona_id INTEGER;"
    for table in _CUBE_TABLES
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core shop tables", CORE_TABLES),
    Migration(2, "features and clustering", ANALYSIS_TABLES),
    Migration(3, "personas, comments and actions", PERSONA_TABLES),
    Migration(4, "imports, erasure log and sample truth", BOOKKEEPING_TABLES),
    Migration(5, "consent-filtered views", CONSENT_VIEWS),
    Migration(6, "explorer: segments and per-customer rollups", EXPLORER_TABLES),
    Migration(7, "application users and roles", APP_USERS),
    Migration(8, "explorer: session rollups by device and by source", SESSION_ROLLUPS),
    Migration(9, "explorer: order values by dimension, cohort month", ORDER_ROLLUPS),
    Migration(10, "clustering: distance to centre, projection sample", CLUSTERING_EXTRAS),
    Migration(11, "explorer cubes per filter cell", EXPLORER_CUBES),
    Migration(12, "explorer cubes: one slice per behavioural segment", CUBE_SEGMENT_SLICES),
    Migration(13, "explorer cubes: cells by set of behavioural segments", CUBE_SEGMENT_SETS),
    Migration(14, "explorer cubes of each persona", PERSONA_CUBES),
)

# Tables holding one shop's data and everything derived from it; replacing the shop (a new
# sample, a fresh import) empties them all. schema_migrations and shop_settings stay.
ALL_DATA_TABLES: tuple[str, ...] = (
    "events", "sessions", "order_items", "orders", "products", "customers",
    "customer_features", "cluster_assignments", "cluster_profiles", "cluster_projection",
    "clustering_runs",
    "persona_members", "persona_history", "persona_comments", "persona_presence", "personas",
    "actions", "sample_truth", "sample_effects", "customer_segments", "customer_session_devices",
    "customer_session_sources",
    "customer_order_values", "customer_order_hours", "customer_order_months",
    "customer_category_revenue", "cube_stats", "cube_demographics", "cube_rfm", "cube_segments",
    "cube_sessions", "cube_order_mix", "cube_categories", "cube_weekday_hour", "cube_months",
    "cube_segment_sets", *(f"persona_{table}" for table in _CUBE_TABLES),
)
