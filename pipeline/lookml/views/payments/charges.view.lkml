view: charges {
  sql_table_name: payments_published.charges ;;


  dimension: is_deleted {
    description: "Fivetran marks rows deleted at the source; explores exclude them."
    hidden: yes
    type: yesno
    sql: ${TABLE}._fivetran_deleted ;;
  }
  dimension: id {
    primary_key: yes
    type: string
    sql: ${TABLE}.id ;;
  }

  dimension: customer_id {
    hidden: yes
    type: string
    sql: ${TABLE}.customer_id ;;
  }

  dimension: invoice_id {
    hidden: yes
    type: string
    sql: ${TABLE}.invoice_id ;;
  }

  dimension: amount {
    description: "Charge amount in major currency units (Stripe stores the smallest unit)."
    type: number
    value_format_name: decimal_2
    sql: ${TABLE}.amount / 100.0 ;;
  }

  dimension: currency {
    type: string
    sql: UPPER(${TABLE}.currency) ;;
  }

  dimension: status {
    type: string
    sql: ${TABLE}.status ;;
  }

  dimension: description {
    type: string
    sql: ${TABLE}.description ;;
  }

  dimension_group: created {
    type: time
    timeframes: [raw, time, date, week, month, quarter, year]
    sql: ${TABLE}.created ;;
  }

  measure: count {
    type: count
    drill_fields: [id, created_time, amount, currency, status]
  }

  measure: succeeded_amount {
    description: "Sum of succeeded charges; mixes currencies unless you filter or group by currency."
    type: sum
    value_format_name: decimal_2
    sql: ${amount} ;;
    filters: [status: "succeeded"]
  }

  measure: average_succeeded_amount {
    description: "Average succeeded charge in major currency units."
    type: average
    value_format_name: decimal_2
    sql: ${amount} ;;
    filters: [status: "succeeded"]
  }

  measure: failed_count {
    type: count
    filters: [status: "failed"]
  }
}
