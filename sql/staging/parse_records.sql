-- Validate raw_records of the load's arrival days (CONTRACT §2): each record gets either clean
-- event columns or exactly one quarantine reason. Each field is the first present of its sources
-- (assets/ingest/fields.py: the configured aliases, the contract's, then each vendor's place),
-- bound as four lists of JSON paths (into the record, then into its properties; the contract's
-- and configured names, then the vendors') and, per field, the positions of its sources in
-- the list of their values ($<field>_sources). `event_date` is the day in $timezone.
-- needs: macros/local_time.sql

-- JSON null counts as absent: json_extract gives it as the JSON text 'null' (json_transform
-- gives SQL NULL, so first_key needs no test); comparing the text spares parsing the value.
create or replace temp macro present(j) as case when j::varchar = 'null' then null else j end;

-- The JSON type of a value read by json_transform or json_extract, which write it minified:
-- a string starts with its quote, an object with its brace. json_type parses its argument on
-- every call, so only the rare values that are neither (numbers, arrays, ...) pay for it.
create or replace temp macro json_kind(j) as
    case
        when starts_with(j::varchar, '"') then 'VARCHAR'
        when starts_with(j::varchar, '{') then 'OBJECT'
        else json_type(j)
    end;

-- The text of a JSON string (`kind` VARCHAR). ->> parses the small minified value again, yet
-- costs less than cutting its quotes off: a slice of text counts characters (a UTF-8 decode of
-- every byte), and a test for backslashes came on top (1M records: ~0.04 CPU s a field).
create or replace temp macro json_text(j) as j ->> '$';

-- trim(s), without its cost for the usual text: trim decodes every character to find the last
-- one that is not a space, and copies the text. Text of ASCII characters only (as many bytes as
-- characters) that neither starts nor ends with ' ' (the one ASCII space trim removes) is its
-- own trim; the first two tests are byte comparisons that settle the first character. `s` is
-- written four times: pass a column, not an expression (a CASE would compute it again).
create or replace temp macro trimmed(s) as
    case
        when s >= '!' and s < chr(127) and not ends_with(s, ' ') and strlen(s) = length(s)
            then s
        else trim(s)
    end;

-- Text of a scalar JSON value ('' counts as absent); NULL for objects and arrays. `kind` is
-- json_kind(j), computed once by the caller. A number or boolean is its minified JSON text.
create or replace temp macro scalar_text(j, kind) as
    case
        when j is null or kind in ('OBJECT', 'ARRAY', 'NULL') then null
        when kind = 'VARCHAR' then nullif(json_text(j), '')
        else nullif(j::varchar, '')
    end;

-- Epoch numbers: milliseconds, or microseconds, when the magnitude says so (1e11 s is the year
-- 5138).
create or replace temp macro epoch_to_ts(v) as
    try(make_timestamp(cast(
        case
            -- Microseconds (some SDKs): 1e14 ms would be the year 5138.
            when abs(v) >= 1e14 then v
            when abs(v) >= 1e11 then v * 1000
            else v * 1000000
        end as bigint
    )));

-- A TIMESTAMPTZ as the UTC TIMESTAMP: its microseconds since the epoch are the same. The cast
-- would convert through ICU's calendar (about 0.06 CPU s per 1M records); infinities, which
-- make_timestamp does not take, still go that way.
create or replace temp macro utc_timestamp(z) as
    case when isfinite(z) then make_timestamp(epoch_us(z)) else try_cast(z as timestamp) end;

-- first_present(vals, positions) and first_key(doc, positions), the first present value among
-- a field's configured sources in one list of values (or among the fields of a struct read with
-- json_transform, which reads JSON null as SQL NULL already), are created before this file
-- (assets/ingest/fields.py SourcePaths.configured_macros): spelt out, not a lambda over the
-- list, so the unused slots fold away when the query is planned, with only as many slots as
-- the configuration fills (at most MAX_SOURCES, 12), since each slot costs planning.

-- The built-in groups hold fewer sources a field (the contract's and the vendors' names, fixed
-- in assets/ingest/fields.py; GROUP_SLOTS there holds these counts, and source_paths fails
-- should a group outgrow them): their macros have only the slots those need. Planning a slot
-- costs even when it folds away, and planning is serial: with 12 slots everywhere it took
-- ~0.13 CPU s of a 1M-record load, ~0.09 s with these.
create or replace temp macro contract_key(doc, positions) as coalesce(
    struct_extract_at(doc, positions[1]),
    struct_extract_at(doc, positions[2]),
    struct_extract_at(doc, positions[3]),
    struct_extract_at(doc, positions[4]),
    struct_extract_at(doc, positions[5])
);

create or replace temp macro property_key(doc, positions) as coalesce(
    struct_extract_at(doc, positions[1]),
    struct_extract_at(doc, positions[2])
);

create or replace temp macro vendor_key(doc, positions) as coalesce(
    struct_extract_at(doc, positions[1]),
    struct_extract_at(doc, positions[2]),
    struct_extract_at(doc, positions[3])
);

create or replace temp macro vendor_value(vals, positions) as coalesce(
    present(vals[positions[1]]),
    present(vals[positions[2]]),
    present(vals[positions[3]]),
    present(vals[positions[4]]),
    present(vals[positions[5]]),
    present(vals[positions[6]])
);

-- A field's value: the first present of its sources (`s`: positions per group of
-- assets/ingest/fields.py, in its order) in the configured names' values, the contract's, then
-- the vendors'; in each, the record's before the properties'. `vendor_keys` is the record
-- struct for a record that may be in a vendor's shape, else NULL.
create or replace temp macro field_value(
    configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, s
) as coalesce(
    first_key(doc, s.configured_record_keys),
    first_present(configured_doc, s.configured_record),
    first_present(configured_props, s.configured_properties),
    contract_key(doc, s.record),
    property_key(props_doc, s.properties),
    -- Inside a CASE: a record in the contract's shape (most) skips the vendor groups whole,
    -- where each of their slots would be tried for every field it lacks (~0.08 CPU s of a
    -- 1M-record load).
    case when vendor_keys is not null then coalesce(
        vendor_key(vendor_keys, s.vendor_record_keys),
        vendor_value(vendor_doc, s.vendor_record),
        vendor_value(vendor_props, s.vendor_properties)
    ) end
);

-- An id as text: a JSON string (trimmed, '' is absent) or a whole number; NULL otherwise.
-- `string` is json_text(j) when `kind` is VARCHAR, a column (see trimmed).
create or replace temp macro id_text(j, kind, string) as
    case
        when kind = 'VARCHAR' then nullif(trimmed(string), '')
        when kind in ('UBIGINT', 'BIGINT') then j::varchar
    end;

-- The top-level keys the contract names as record fields; every other top-level key is a
-- property too (CSV/Parquet columns, flat JSON records, a vendor's extra objects). A MAP of
-- every key costs 3-4x more than the paths, so it is built only for records that have others.
create or replace temp macro is_record_field(k) as list_contains(
    [
        'user_id', 'distinct_id', 'userId', 'anonymous_id', 'anonymousId',
        'event', 'event_type', 'event_name', 'name',
        'timestamp', 'time', 'ts', 'event_time', 'originalTimestamp',
        'event_id', 'uuid', 'messageId', 'insert_id', '$insert_id', 'properties',
        'event_properties'
    ],
    k
);

-- Segment calls other than `track` have no event name: they load as the events PostHog's
-- Segment destination makes of them (assets/ingest/fields.py, SEGMENT_CALL_EVENTS).
create or replace temp macro segment_call_event(call_type) as
    case call_type
        when 'identify' then '$identify'
        when 'alias' then '$create_alias'
        when 'group' then '$groupidentify'
        when 'page' then '$pageview'
        when 'screen' then '$screen'
    end;

-- All days in one pass: the query's planning costs as much as validating a few thousand
-- records, and a range load pays it once (assets/ingest/load.py load_range).
create or replace temp table parsed_batch as
with docs as (
    select
        *,
        case
            -- NULL for anything but a JSON object.
            -- The first test spares ltrim's copy of every record that starts with its brace.
            when read_error is null and raw_bytes <= 1048576
                 and (starts_with(raw, '{') or starts_with(ltrim(raw), '{'))
                then try(json_transform(raw, $record_spec))
        end as doc
    from raw_records
),
shaped as (
    select
        *,
        -- A CASE, not AND: json_keys must never see a record that is not valid JSON.
        case
            when doc is not null
                then len(list_filter(json_keys(raw), lambda k: not is_record_field(k))) > 0
            else false
        end as has_extras
    from docs
),
vendor_shaped as (
    -- A record may be in a vendor's shape when it has top-level keys the contract does not
    -- name (Amplitude, Segment), a "$" (Mixpanel's and PostHog's keys; one character is the
    -- cheapest test), or no user where the contract puts one. Only these pay for the vendor
    -- paths.
    select
        *,
        doc is not null and (
            has_extras or contains(raw, '$') or contract_key(doc, $sent_id_sources.record) is null
        ) as vendor_shaped
    from shaped
),
fields as (
    select
        *,
        case
            when doc is not null and len($configured_record_paths) > 0
                then json_extract(raw, $configured_record_paths)
        end as configured_doc,
        case when vendor_shaped then doc end as vendor_keys,
        case
            when vendor_shaped and len($vendor_record_paths) > 0
                then json_extract(raw, $vendor_record_paths)
        end as vendor_doc,
        -- Top-level keys that are not record fields are properties too (CSV/Parquet columns,
        -- or flat JSON records).
        case
            when has_extras
                then map_from_entries(list_filter(
                    map_entries(json_transform(raw, '"MAP(VARCHAR, JSON)"')),
                    lambda e: e.value is not null and e.value::varchar <> 'null'
                        and not is_record_field(e.key)
                ))
        end as extras
    from vendor_shaped
),
record_fields as (
    -- Read before the properties: the fields of the record itself.
    select
        *,
        coalesce(
            first_key(doc, $properties_sources.configured_record_keys),
            first_present(configured_doc, $properties_sources.configured_record),
            contract_key(doc, $properties_sources.record),
            vendor_key(vendor_keys, $properties_sources.vendor_record_keys),
            vendor_value(vendor_doc, $properties_sources.vendor_record)
        ) as props_j
    from fields
),
kinds as (
    select *, json_kind(props_j) as props_kind from record_fields
),
objects as (
    select
        *,
        case
            when props_j is null then '{}'::json
            when props_kind = 'OBJECT' then props_j
            -- A CSV/Parquet cell can only hold the object as JSON text.
            when tabular and props_kind = 'VARCHAR' and json_valid(props_j ->> '$')
                 and json_type((props_j ->> '$')::json) = 'OBJECT'
                then (props_j ->> '$')::json
        end as props_obj
    from kinds
),
props as (
    select
        *,
        case
            when props_obj is null then null
            when extras is null or cardinality(extras) = 0 then props_obj
            else json_merge_patch(to_json(extras), props_obj)
        end as properties
    from objects
),
sourced as (
    select
        *,
        case
            when len($configured_properties_paths) > 0
                then json_extract(coalesce(properties, '{}'::json), $configured_properties_paths)
        end as configured_props,
        json_transform(coalesce(properties, '{}'::json), $properties_spec) as props_doc,
        case
            when vendor_shaped
                then json_extract(coalesce(properties, '{}'::json), $vendor_properties_paths)
        end as vendor_props
    from props
),
lifted as (
    select
        *,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $sent_id_sources) as user_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $user_id_sources) as identified_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $distinct_id_sources) as distinct_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $anonymous_id_sources) as anonymous_j,
        -- A Segment call other than track, when the record has no `event`, is named for its
        -- type ($identify, $pageview, ...), before the `name` alias (its page's name).
        coalesce(
            case
                when struct_extract_at(doc, $event_key) is null
                    then to_json(segment_call_event(field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $call_type_sources) ->> '$'))
            end,
            field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $event_sources)
        ) as event_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $timestamp_sources) as time_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $event_id_sources) as id_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $platform_sources) as platform_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $channel_sources) as channel_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $campaign_sources) as campaign_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $country_sources) as country_j,
        field_value(configured_doc, configured_props, doc, props_doc, vendor_keys, vendor_doc, vendor_props, $revenue_sources) as revenue_j
    from sourced
),
lifted_kinds as (
    -- Each JSON type once.
    select
        *,
        json_kind(user_j) as user_kind,
        json_kind(event_j) as event_kind,
        json_kind(time_j) as time_kind,
        json_kind(id_j) as id_kind,
        json_kind(platform_j) as platform_kind,
        json_kind(channel_j) as channel_kind,
        json_kind(campaign_j) as campaign_kind,
        json_kind(country_j) as country_kind,
        json_kind(revenue_j) as revenue_kind,
        case when time_kind = 'VARCHAR' then json_text(time_j) end as time_string,
        case when user_kind = 'VARCHAR' then json_text(user_j) end as user_string,
        case when event_kind = 'VARCHAR' then json_text(event_j) end as event_string,
        json_kind(identified_j) as identified_kind,
        json_kind(anonymous_j) as anonymous_kind,
        json_kind(distinct_j) as distinct_kind,
        -- An identified id from the user id's own source is read as the user id (ids below).
        case
            when identified_kind = 'VARCHAR' and identified_j is distinct from user_j
                then json_text(identified_j)
        end as identified_string,
        case when anonymous_kind = 'VARCHAR' then json_text(anonymous_j) end as anonymous_string,
        case when distinct_kind = 'VARCHAR' then json_text(distinct_j) end as distinct_string
    from lifted
),
texts as (
    -- Trimmed in a step of their own: trimmed() repeats its argument.
    select
        *,
        trimmed(time_string) as time_text,
        nullif(trimmed(user_string), '') as user_text,
        nullif(trimmed(event_string), '') as event_text
    from lifted_kinds
),
typed as (
    select
        *,
        case
            when time_kind in ('UBIGINT', 'BIGINT', 'DOUBLE')
                then epoch_to_ts(time_j::varchar::double)
            -- Epoch numbers as text. ISO text has a ':' or a '-' after its first character,
            -- which an epoch number never has: that test spares it the cast and the pattern.
            when not contains(time_text, ':') and not contains(time_text[2:], '-')
                and try_cast(time_text as double) is not null
                and regexp_full_match(time_text, '-?[0-9]+(\.[0-9]+)?')
                then epoch_to_ts(try_cast(time_text as double))
            else utc_timestamp(try_cast(time_text as timestamptz))
        end as ts,
        case
            when revenue_kind in ('UBIGINT', 'BIGINT', 'DOUBLE')
                then revenue_j::varchar::double
            when revenue_kind = 'VARCHAR' then try_cast(trim(json_text(revenue_j)) as double)
        end as revenue_value
    from texts
),
ids as (
    -- The ids as text. An identified id read from the same source as the user id (the common
    -- case) is not decoded again.
    select
        *,
        case
            when identified_j is not distinct from user_j then coalesce(user_text, user_j ->> '$')
            else id_text(identified_j, identified_kind, identified_string)
        end as identified_text,
        id_text(anonymous_j, anonymous_kind, anonymous_string) as anonymous_text,
        id_text(distinct_j, distinct_kind, distinct_string) as distinct_text
    from typed
),
identity as (
    -- CONTRACT §2 Identity: the anonymous id, Mixpanel's "$device:<id>" read as the device
    -- <id>; and the identified id: a user id, or a distinct_id that is not anonymous.
    select
        *,
        nullif(
            case
                when starts_with(anonymous_seen, '$device:') then anonymous_seen[9:]
                else anonymous_seen
            end,
            ''
        ) as anonymous_id,
        coalesce(
            identified_text,
            case
                when not starts_with(distinct_text, '$device:')
                    and distinct_text is distinct from anonymous_text
                    then distinct_text
            end
        ) as identified_id
    from (
        select
            *,
            coalesce(
                anonymous_text,
                case when starts_with(distinct_text, '$device:') then distinct_text end
            ) as anonymous_seen
        from ids
    )
),
judged as (
    select
        *,
        case
            when read_error is not null then 'malformed_record'
            when raw_bytes > 1048576 then 'oversized_record'
            when doc is null then 'malformed_record'
            when user_j is null or (user_kind = 'VARCHAR' and user_text is null)
                then 'missing_user_id'
            when event_j is null or (event_kind = 'VARCHAR' and event_text is null)
                then 'missing_event'
            when time_j is null or time_text = ''
                then 'missing_timestamp'
            when user_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT')
                or event_kind <> 'VARCHAR'
                or time_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT', 'DOUBLE')
                or (id_j is not null and id_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT'))
                or props_obj is null
                or platform_kind in ('OBJECT', 'ARRAY') or channel_kind in ('OBJECT', 'ARRAY')
                or campaign_kind in ('OBJECT', 'ARRAY') or country_kind in ('OBJECT', 'ARRAY')
                then 'invalid_type'
            -- DuckDB reads 'infinity' and 'epoch' as timestamps; no event happens there.
            when ts is null or not isfinite(ts) or ts < $earliest_event_time
                then 'invalid_timestamp'
            when ts > arrival_date::timestamp + interval 2 day then 'future_timestamp'
            when revenue_j is not null and (
                revenue_value is null or not isfinite(revenue_value)
                or abs(revenue_value) > $largest_revenue
            )
                then 'invalid_revenue'
        end as reason
    from identity
)
select
    arrival_date,
    source_file,
    line_no,
    reason,
    case reason
        when 'malformed_record' then coalesce(read_error, 'not one JSON object (unparseable, not an object, or a key repeated)')
        when 'oversized_record' then 'record of ' || raw_bytes || ' bytes is over the 1 MiB limit; raw keeps the first 64 KiB'
        when 'missing_user_id' then 'no user id (' || $sent_id_names || ')'
        when 'missing_event' then 'no event name (' || $event_names || ')'
        when 'missing_timestamp' then 'no timestamp (' || $timestamp_names || ')'
        when 'invalid_type' then 'a field has the wrong JSON type: '
            || concat_ws(', ',
                case when user_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT') then 'user id is ' || user_kind end,
                case when event_kind <> 'VARCHAR' then 'event is ' || event_kind end,
                case when time_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT', 'DOUBLE') then 'timestamp is ' || time_kind end,
                case when id_j is not null and id_kind not in ('VARCHAR', 'UBIGINT', 'BIGINT') then 'event id is ' || id_kind end,
                case when props_obj is null then 'properties is ' || props_kind || ', not an object' end,
                case when platform_kind in ('OBJECT', 'ARRAY') or channel_kind in ('OBJECT', 'ARRAY') or campaign_kind in ('OBJECT', 'ARRAY') or country_kind in ('OBJECT', 'ARRAY') then 'platform/channel/campaign/country must be text' end
            )
        when 'invalid_timestamp' then 'timestamp ' || (time_j::varchar) || ' is not ISO 8601 or epoch seconds/milliseconds from ' || strftime($earliest_event_time, '%Y-%m-%d') || ' on'
        when 'future_timestamp' then 'timestamp ' || strftime(ts, '%Y-%m-%dT%H:%M:%S') || 'Z is more than 1 day after the end of arrival day ' || arrival_date::varchar
        when 'invalid_revenue' then 'revenue ' || (revenue_j::varchar) || ' is not a number within ±' || $largest_revenue::varchar
    end as detail,
    case when reason = 'oversized_record' then left(raw, 65536) else raw end as raw,
    case
        when reason is null then coalesce(
            scalar_text(id_j, id_kind),
            md5(concat_ws(chr(31), coalesce(user_text, user_j ->> '$'), event_text,
                          strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), properties::varchar))
        )
    end as event_id,
    -- The person as far as this record knows; load_partition.sql applies the identities.
    coalesce(identified_id, user_text, user_j ->> '$') as user_id,
    event_text as event,
    ts,
    local_date(ts, $timezone) as event_date,
    scalar_text(platform_j, platform_kind) as platform,
    scalar_text(channel_j, channel_kind) as channel,
    scalar_text(campaign_j, campaign_kind) as campaign,
    scalar_text(country_j, country_kind) as country,
    revenue_value as revenue,
    properties,
    coalesce(user_text, user_j ->> '$') as distinct_id,
    anonymous_id,
    identified_id is not null as identified
from judged;
