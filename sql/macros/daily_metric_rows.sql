-- sql/macros/daily_metric_rows.sql: the rows of daily_metrics (CONTRACT §3) for the days of the
-- relations named `scoped_user_days` (dimension_user_days: events grouped per day, user and
-- combination of dimension values), `scoped_users` (users, by first_seen_date),
-- `scoped_sessions` (sessions, by start day) and `scoped_days` (metric_date: the days that get
-- an ('all', 'all') row), each holding every row of the days it covers: daily_metrics.sql
-- passes everything, daily_metrics_update.sql the changed days.
-- Segments (CONTRACT §3 Breakdowns): activity, events, purchasers and revenue use each event's
-- own value of each dimension, so a user with events of two values on one day is active in
-- both segments; new users use their first event's (the first event of their first session);
-- sessions their first event's. Missing or empty is 'unknown', a value not kept in
-- dimension_values is 'other'; a user is counted once per segment, so 'other' rows count
-- distinct users too. Segment rows exist for (day, segment) pairs with at least one event.
-- `dims` is the list of dimension specs (macros/segments.sql); `scoped_sessions` has the
-- sessions' user_id, started_at and their first event's values value_1 .. value_8
-- (session_values in macros/segments.sql). `zone`: the project time zone that sessions' start
-- days are cut in.
-- needs: macros/segments.sql
-- needs: macros/local_time.sql

-- The rows of the relation named `user_days` whose value of dimension number k is `value`
-- ('' for a missing one), summed per day and value: events and revenue add up without knowing
-- the user. No rows when k is past the configured dimensions.
create or replace temp macro dimension_value_sums(user_days, dims, k) as table
select
    metric_date,
    k as dimension_no,
    coalesce(
        slot_value(k, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8), ''
    ) as value,
    sum(events) as events,
    sum(revenue) as revenue
from query_table(user_days)
where k <= len(dims)
group by all;

create or replace temp macro daily_metric_rows(
    scoped_user_days, scoped_users, scoped_sessions, scoped_days, dims, zone
) as table
with session_days as materialized (
    -- Sessions started per day and combination of values of their first event; `is_first`
    -- marks users' first sessions (starting at first_seen_at), whose first event is the user's
    -- first: they count the new users. A session is counted once in each dimension, so no
    -- per-user grouping is needed.
    -- Grouped by the configured dimensions' value columns only (one branch runs, as in
    -- user_day_masks).
    select
        local_date(s.started_at, zone) as metric_date,
        u.user_id is not null as is_first,
        s.value_1, s.value_2, s.value_3, s.value_4,
        null::varchar as value_5, null::varchar as value_6,
        null::varchar as value_7, null::varchar as value_8,
        count(*) as sessions
    from query_table(scoped_sessions) as s
    left join query_table(scoped_users) as u
        on u.user_id = s.user_id and u.first_seen_at = s.started_at
    where len(dims) <= 4
    group by all
    union all
    select
        local_date(s.started_at, zone),
        u.user_id is not null,
        s.value_1, s.value_2, s.value_3, s.value_4, s.value_5, s.value_6, s.value_7, s.value_8,
        count(*)
    from query_table(scoped_sessions) as s
    left join query_table(scoped_users) as u
        on u.user_id = s.user_id and u.first_seen_at = s.started_at
    where len(dims) > 4
    group by all
),
user_day_combinations as materialized (
    -- The distinct combinations of values of the user-day rows: a few thousand rows (over the
    -- configured dimensions' columns only; one branch runs).
    select distinct
        value_1, value_2, value_3, value_4,
        null::varchar as value_5, null::varchar as value_6,
        null::varchar as value_7, null::varchar as value_8
    from query_table(scoped_user_days)
    where len(dims) <= 4
    union all
    select distinct value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
    from query_table(scoped_user_days)
    where len(dims) > 4
),
value_segments as materialized (
    -- The segment of each value seen ('' for a missing one), per dimension, and where the
    -- segment sits in a set of segments: each (dimension, segment) is numbered 0, 1, ... over
    -- all dimensions, and sets are words of 64 bits, so segment n is bit n % 64 of word
    -- n // 64. A small table, from the few distinct combinations of values.
    select
        *,
        segment_no // 64 as segment_word,
        1::ubigint << (segment_no % 64) as segment_bit
    from (
        select
            *,
            dense_rank() over (order by dimension_no, segment)::integer - 1 as segment_no
        from (
            select v.dimension_no, v.value, segment_value(v.value, k.value) as segment
            from (
                select distinct
                    unnest(range(1, len(dims) + 1)) as dimension_no,
                    unnest(
                        dimension_list(
                            dims,
                            value_1, value_2, value_3, value_4,
                            value_5, value_6, value_7, value_8
                        )
                    ) as value
                from (
                    select * from user_day_combinations
                    union
                    select distinct
                        value_1, value_2, value_3, value_4,
                        value_5, value_6, value_7, value_8
                    from session_days
                )
            ) as v
            left join dimension_values as k
                on k.dimension = dims[v.dimension_no].dimension
                and k.key = segment_key(dims[v.dimension_no], v.value)
        )
    )
),
combination_words as materialized (
    -- Per combination of values of the user-day rows and word of segment sets: the bits of
    -- the combination's segments (one per dimension) in that word. Word 0 (it holds the day's
    -- totals) always; another word only where the combination has a segment in it, so a row
    -- goes into at most 1 + len(dims) words (a word without any of its segments would add
    -- nothing to any segment). Computed once per combination instead of once per row.
    select
        c.value_1, c.value_2, c.value_3, c.value_4,
        c.value_5, c.value_6, c.value_7, c.value_8,
        b.word_no,
        bit_or(b.bit) as mask
    from user_day_combinations as c
    cross join lateral (
        select 0 as word_no, 0::ubigint as bit
        union all
        select s.segment_word, s.segment_bit
        from (
            select
                unnest(range(1, len(dims) + 1)) as dimension_no,
                unnest(
                    dimension_list(
                        dims,
                        c.value_1, c.value_2, c.value_3, c.value_4,
                        c.value_5, c.value_6, c.value_7, c.value_8
                    )
                ) as value
        ) as v
        join value_segments as s using (dimension_no, value)
    ) as b
    group by all
),
user_day_masks as materialized (
    -- One row per day, user and word of segment sets (one word unless the dimensions have
    -- more than 64 segments in all): the day's totals ('all', read from word 0) and the set of
    -- segments, of every dimension, that the user was active in (`mask`) and had a conversion
    -- in (`bought`). A user is then counted once per segment from these sets: one grouping
    -- per user and day serves every dimension, instead of one grouping of the (user,
    -- segment) pairs per dimension. Each row finds its bits by one join on its combination
    -- of values (NULL matching NULL), not one join per dimension: on the configured
    -- dimensions' value columns only (the slots past them are NULL on both sides), as in
    -- dimension_user_day_rows (macros/segments.sql); one branch runs.
    select
        u.metric_date,
        u.user_key,
        c.word_no,
        sum(u.events) as events,
        sum(u.revenue) as revenue,
        bool_or(u.purchased) as purchased,
        bit_or(c.mask) as mask,
        bit_or(c.mask) filter (where u.purchased) as bought
    from query_table(scoped_user_days) as u
    join combination_words as c
        on c.value_1 is not distinct from u.value_1
        and c.value_2 is not distinct from u.value_2
    where len(dims) <= 2
    group by u.metric_date, u.user_key, c.word_no
    union all
    select
        u.metric_date,
        u.user_key,
        c.word_no,
        sum(u.events) as events,
        sum(u.revenue) as revenue,
        bool_or(u.purchased) as purchased,
        bit_or(c.mask) as mask,
        bit_or(c.mask) filter (where u.purchased) as bought
    from query_table(scoped_user_days) as u
    join combination_words as c
        on c.value_1 is not distinct from u.value_1
        and c.value_2 is not distinct from u.value_2
        and c.value_3 is not distinct from u.value_3
        and c.value_4 is not distinct from u.value_4
    where len(dims) between 3 and 4
    group by u.metric_date, u.user_key, c.word_no
    union all
    select
        u.metric_date,
        u.user_key,
        c.word_no,
        sum(u.events) as events,
        sum(u.revenue) as revenue,
        bool_or(u.purchased) as purchased,
        bit_or(c.mask) as mask,
        bit_or(c.mask) filter (where u.purchased) as bought
    from query_table(scoped_user_days) as u
    join combination_words as c
        on c.value_1 is not distinct from u.value_1
        and c.value_2 is not distinct from u.value_2
        and c.value_3 is not distinct from u.value_3
        and c.value_4 is not distinct from u.value_4
        and c.value_5 is not distinct from u.value_5
        and c.value_6 is not distinct from u.value_6
        and c.value_7 is not distinct from u.value_7
        and c.value_8 is not distinct from u.value_8
    where len(dims) > 4
    group by u.metric_date, u.user_key, c.word_no
),
segment_numbers as (
    select distinct dimension_no, segment, segment_word, (segment_no % 64)::ubigint as bit_no
    from value_segments
),
dimension_words as (
    -- Each dimension's bits in each word of the segment sets.
    select dimension_no, segment_word, bit_or(1::ubigint << bit_no) as bits
    from segment_numbers
    group by all
),
mask_users as (
    -- The users per day, dimension and pair of that dimension's segment sets: a few rows per
    -- day and dimension.
    select
        m.metric_date,
        d.dimension_no,
        d.segment_word,
        m.mask & d.bits as mask,
        m.bought & d.bits as bought,
        count(*) as users
    from user_day_masks as m
    join dimension_words as d on d.segment_word = m.word_no
    group by all
),
value_sums as (
    select * from dimension_value_sums(scoped_user_days, dims, 1)
    union all select * from dimension_value_sums(scoped_user_days, dims, 2)
    union all select * from dimension_value_sums(scoped_user_days, dims, 3)
    union all select * from dimension_value_sums(scoped_user_days, dims, 4)
    union all select * from dimension_value_sums(scoped_user_days, dims, 5)
    union all select * from dimension_value_sums(scoped_user_days, dims, 6)
    union all select * from dimension_value_sums(scoped_user_days, dims, 7)
    union all select * from dimension_value_sums(scoped_user_days, dims, 8)
),
activity as (
    -- Each segment of a set counts that set's users (and its purchasers when in `bought`).
    select
        m.metric_date,
        s.dimension_no,
        s.segment,
        sum(m.users) as active_users,
        sum(m.users) filter (where (m.bought >> s.bit_no) & 1 = 1) as purchasers,
        null::hugeint as events,
        null::decimal(38, 9) as revenue
    from mask_users as m
    join segment_numbers as s
        on s.dimension_no = m.dimension_no
        and s.segment_word = m.segment_word
        and (m.mask >> s.bit_no) & 1 = 1
    group by all
    union all
    select v.metric_date, v.dimension_no, s.segment, null, null, sum(v.events), sum(v.revenue)
    from value_sums as v
    join value_segments as s using (dimension_no, value)
    group by all
    union all
    select
        metric_date,
        0,
        'all',
        count(*),
        count(*) filter (where purchased),
        sum(events),
        sum(revenue)
    from user_day_masks
    where word_no = 0
    group by metric_date
),
session_starts as (
    select
        v.metric_date,
        v.dimension_no,
        s.segment,
        sum(v.sessions) as sessions,
        sum(v.firsts) as new_users
    from (
        -- One grouping per dimension of the day's session combinations (a plain column each)
        -- rather than an unnest of every combination into its dimensions.
        select
            metric_date,
            1 as dimension_no,
            coalesce(value_1, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 1 <= len(dims)
        group by all
        union all
        select
            metric_date,
            2 as dimension_no,
            coalesce(value_2, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 2 <= len(dims)
        group by all
        union all
        select
            metric_date,
            3 as dimension_no,
            coalesce(value_3, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 3 <= len(dims)
        group by all
        union all
        select
            metric_date,
            4 as dimension_no,
            coalesce(value_4, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 4 <= len(dims)
        group by all
        union all
        select
            metric_date,
            5 as dimension_no,
            coalesce(value_5, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 5 <= len(dims)
        group by all
        union all
        select
            metric_date,
            6 as dimension_no,
            coalesce(value_6, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 6 <= len(dims)
        group by all
        union all
        select
            metric_date,
            7 as dimension_no,
            coalesce(value_7, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 7 <= len(dims)
        group by all
        union all
        select
            metric_date,
            8 as dimension_no,
            coalesce(value_8, '') as value,
            sum(sessions) as sessions,
            sum(sessions) filter (where is_first) as firsts
        from session_days
        where 8 <= len(dims)
        group by all
    ) as v
    join value_segments as s using (dimension_no, value)
    group by all
    union all
    select local_date(started_at, zone), 0, 'all', count(*), null
    from query_table(scoped_sessions)
    group by all
    union all
    select first_seen_date, 0, 'all', null, count(*)
    from query_table(scoped_users)
    group by all
),
all_days as (
    -- The ('all', 'all') row of every day asked for, even a day without events.
    select metric_date, 0 as dimension_no, 'all' as segment
    from query_table(scoped_days)
),
combined as (
    select * from activity
    union all by name select * from session_starts
    union all by name select * from all_days
)
select
    metric_date,
    if(dimension_no = 0, 'all', dims[dimension_no].dimension) as dimension,
    segment,
    coalesce(sum(active_users), 0)::bigint as active_users,
    coalesce(sum(new_users), 0)::bigint as new_users,
    coalesce(sum(sessions), 0)::bigint as sessions,
    coalesce(sum(events), 0)::bigint as events,
    coalesce(sum(purchasers), 0)::bigint as purchasers,
    coalesce(sum(revenue), 0)::double as revenue,
    -- purchasers / active_users; 0 on a day without active users rather than NULL.
    coalesce(sum(purchasers) / nullif(sum(active_users), 0), 0)::double as conversion_rate
from combined
group by metric_date, dimension_no, segment;
