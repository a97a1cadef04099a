-- The value a funnel step's `where` key compares, as text (CONTRACT §3 Funnel semantics): a
-- lifted column (platform, channel, campaign, country) from its column, any other key from
-- `properties` by its JSON pointer (`path`, from assets/marts/funnels.py). Used by
-- sql/intermediate/funnels/funnel_events.sql.
create or replace temp macro filter_value(f, platform, channel, campaign, country, properties) as
    case f.key
        when 'platform' then platform
        when 'channel' then channel
        when 'campaign' then campaign
        when 'country' then country
        else json_extract_string(properties, f.path)
    end;
