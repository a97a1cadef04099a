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

-- A segment's bit (`segment_bit`, of the segment set word `segment_word`) if that word is
-- `word_no`, else none: a missing segment (a dimension past the configured ones) has none.
create or replace temp macro word_bit(word_no, segment_word, segment_bit) as
    if(segment_word = word_no, segment_bit, 0::ubigint);

create or replace temp macro daily_metric_rows(
    scoped_user_days, scoped_users, scoped_sessions, scoped_days, dims, zone
) as table
with session_days as materialized (
    -- Sessions started per day and combination of values of their first event; `is_first`
    -- marks users' first sessions (starting at first_seen_at), whose first event is the user's
    -- first: they count the new users. A session is counted once in each dimension, so no
    -- per-user grouping is needed.
    select
        local_date(s.started_at, zone) as metric_date,
        u.user_id is not null as is_first,
        s.value_1, s.value_2, s.value_3, s.value_4, s.value_5, s.value_6, s.value_7, s.value_8,
        count(*) as sessions
    from query_table(scoped_sessions) as s
    left join query_table(scoped_users) as u
        on u.user_id = s.user_id and u.first_seen_at = s.started_at
    group by all
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
                    select distinct
                        value_1, value_2, value_3, value_4,
                        value_5, value_6, value_7, value_8
                    from query_table(scoped_user_days)
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
user_day_masks as materialized (
    -- One row per day, user and word of segment sets (one word unless the dimensions have
    -- more than 64 segments in all): the day's totals ('all', read from word 0) and the set of
    -- segments, of every dimension, that the user was active in (`mask`) and had a conversion
    -- in (`bought`). A user is then counted once per segment from these sets: one grouping
    -- per user and day serves every dimension, instead of one grouping of the (user,
    -- segment) pairs per dimension.
    select
        u.metric_date,
        u.user_key,
        u.word_no,
        sum(u.events) as events,
        sum(u.revenue) as revenue,
        bool_or(u.purchased) as purchased,
        bit_or(u.mask) as mask,
        bit_or(u.mask) filter (where u.purchased) as bought
    from (
        select
            u.*,
            word_bit(w.word_no, s1.segment_word, s1.segment_bit)
                | word_bit(w.word_no, s2.segment_word, s2.segment_bit)
                | word_bit(w.word_no, s3.segment_word, s3.segment_bit)
                | word_bit(w.word_no, s4.segment_word, s4.segment_bit)
                | word_bit(w.word_no, s5.segment_word, s5.segment_bit)
                | word_bit(w.word_no, s6.segment_word, s6.segment_bit)
                | word_bit(w.word_no, s7.segment_word, s7.segment_bit)
                | word_bit(w.word_no, s8.segment_word, s8.segment_bit) as mask,
            w.word_no
        from query_table(scoped_user_days) as u
        left join value_segments as s1
            on s1.dimension_no = 1 and s1.value = coalesce(u.value_1, '')
        left join value_segments as s2
            on s2.dimension_no = 2 and s2.value = coalesce(u.value_2, '')
        left join value_segments as s3
            on s3.dimension_no = 3 and s3.value = coalesce(u.value_3, '')
        left join value_segments as s4
            on s4.dimension_no = 4 and s4.value = coalesce(u.value_4, '')
        left join value_segments as s5
            on s5.dimension_no = 5 and s5.value = coalesce(u.value_5, '')
        left join value_segments as s6
            on s6.dimension_no = 6 and s6.value = coalesce(u.value_6, '')
        left join value_segments as s7
            on s7.dimension_no = 7 and s7.value = coalesce(u.value_7, '')
        left join value_segments as s8
            on s8.dimension_no = 8 and s8.value = coalesce(u.value_8, '')
        -- Every row in every word while there are fewer words than dimensions (the usual one
        -- word: no list built per row); past that, word 0 (the totals) and the words of the
        -- row's own segments only, so a large dimension_limit costs at most one row per
        -- dimension, as many as one grouping per dimension would.
        cross join lateral (
            select unnest(
                if(
                    (select max(segment_word) from value_segments) < len(dims),
                    range(0, (select max(segment_word) + 1 from value_segments)),
                    list_distinct([
                        0, s1.segment_word, s2.segment_word, s3.segment_word, s4.segment_word,
                        s5.segment_word, s6.segment_word, s7.segment_word, s8.segment_word
                    ])
                )
            ) as word_no
        ) as w
    ) as u
    group by u.metric_date, u.user_key, u.word_no
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
        sum(v.sessions) filter (where v.is_first) as new_users
    from (
        select
            metric_date,
            is_first,
            sessions,
            unnest(range(1, len(dims) + 1)) as dimension_no,
            unnest(
                dimension_list(
                    dims, value_1, value_2, value_3, value_4, value_5, value_6, value_7, value_8
                )
            ) as value
        from session_days
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
