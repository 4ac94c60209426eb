view: invoices {
  sql_table_name: payments_published.invoices ;;


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

  dimension: amount_due {
    type: number
    value_format_name: decimal_2
    sql: ${TABLE}.amount_due / 100.0 ;;
  }

  dimension: amount_paid {
    type: number
    value_format_name: decimal_2
    sql: ${TABLE}.amount_paid / 100.0 ;;
  }

  dimension: status {
    type: string
    sql: ${TABLE}.status ;;
  }

  dimension_group: due {
    type: time
    datatype: date
    timeframes: [date, week, month, quarter, year]
    sql: ${TABLE}.due_date ;;
  }

  dimension_group: created {
    type: time
    timeframes: [raw, time, date, week, month, quarter, year]
    sql: ${TABLE}.created ;;
  }

  measure: count {
    type: count
    drill_fields: [id, status, amount_due, due_date]
  }

  measure: total_due {
    type: sum
    value_format_name: decimal_2
    sql: ${amount_due} ;;
  }

  measure: total_outstanding {
    type: sum
    value_format_name: decimal_2
    sql: ${amount_due} - ${amount_paid} ;;
    filters: [status: "open"]
  }
}
