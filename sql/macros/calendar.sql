-- Calendar period macros shared by retention and cohorts (CONTRACT §3).
-- Calendar periods; date_trunc('week') starts weeks on Monday (ISO), as CONTRACT §3 requires.
create or replace temp macro calendar_period_start(grain, d) as date_trunc(grain, d)::date;

create or replace temp macro calendar_period_index(grain, cohort_day, activity_day) as
    case grain
        when 'month' then date_diff(
            'month', date_trunc('month', cohort_day), date_trunc('month', activity_day)
        )
        when 'week' then date_diff(
            'day', date_trunc('week', cohort_day), date_trunc('week', activity_day)
        ) // 7
        else date_diff('day', cohort_day, activity_day)
    end;

create or replace temp macro calendar_nth_period_start(grain, cohort_start, n) as
    case grain
        when 'month' then (cohort_start + to_months(n))::date
        when 'week' then (cohort_start + to_days(7 * n))::date
        else (cohort_start + to_days(n))::date
    end;
