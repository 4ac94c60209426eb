view: revenue_by_customer {
  derived_table: {
    sql:
      SELECT
        customers.id AS customer_id,
        customers.country AS country,
        UPPER(charges.currency) AS currency,
        COUNT(*) AS charge_count,
        SUM(charges.amount) / 100.0 AS revenue,
        MIN(charges.created) AS first_charge_at,
        MAX(charges.created) AS last_charge_at
      FROM payments_published.charges AS charges
      JOIN payments_published.customers AS customers ON charges.customer_id = customers.id
      WHERE charges.status = 'succeeded'
        AND NOT charges._fivetran_deleted
        AND NOT customers._fivetran_deleted
      GROUP BY 1, 2, 3 ;;
    datagroup_trigger: payments_etl
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    sql: ${TABLE}.customer_id || '-' || ${TABLE}.currency ;;
  }

  dimension: customer_id {
    type: string
    sql: ${TABLE}.customer_id ;;
  }

  dimension: country {
    type: string
    map_layer_name: countries
    sql: ${TABLE}.country ;;
  }

  dimension: currency {
    type: string
    sql: ${TABLE}.currency ;;
  }

  dimension: charge_count {
    type: number
    sql: ${TABLE}.charge_count ;;
  }

  dimension: revenue {
    type: number
    value_format_name: decimal_2
    sql: ${TABLE}.revenue ;;
  }

  dimension_group: first_charge {
    type: time
    timeframes: [raw, date, month]
    sql: ${TABLE}.first_charge_at ;;
  }

  dimension_group: last_charge {
    type: time
    timeframes: [raw, date, month]
    sql: ${TABLE}.last_charge_at ;;
  }

  measure: customer_count {
    type: count_distinct
    sql: ${customer_id} ;;
  }

  measure: total_revenue {
    type: sum
    value_format_name: decimal_2
    sql: ${revenue} ;;
  }
}
