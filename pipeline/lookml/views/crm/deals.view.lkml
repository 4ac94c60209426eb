view: deals {
  sql_table_name: crm_published.deals ;;


  dimension: is_deleted {
    description: "Fivetran marks rows deleted at the source; explores exclude them."
    hidden: yes
    type: yesno
    sql: ${TABLE}._fivetran_deleted ;;
  }
  dimension: id {
    primary_key: yes
    type: number
    sql: ${TABLE}.id ;;
  }

  dimension: company_id {
    hidden: yes
    type: number
    sql: ${TABLE}.company_id ;;
  }

  dimension: contact_id {
    hidden: yes
    type: number
    sql: ${TABLE}.contact_id ;;
  }

  dimension: amount {
    type: number
    value_format_name: decimal_2
    sql: ${TABLE}.amount ;;
  }

  dimension: stage {
    type: string
    sql: ${TABLE}.stage ;;
  }

  dimension: is_won {
    type: yesno
    sql: ${TABLE}.stage = 'closedwon' ;;
  }

  dimension: notes {
    description: "Free text written by sales reps; tollgate scans it for PII before Looker refreshes."
    type: string
    sql: ${TABLE}.notes ;;
  }

  dimension_group: close {
    type: time
    datatype: date
    timeframes: [date, week, month, quarter, year]
    sql: ${TABLE}.close_date ;;
  }

  dimension_group: created {
    type: time
    timeframes: [raw, time, date, week, month, quarter, year]
    sql: ${TABLE}.created_at ;;
  }

  measure: count {
    type: count
    drill_fields: [id, stage, amount, close_date]
  }

  measure: open_pipeline_amount {
    type: sum
    value_format_name: decimal_2
    sql: ${amount} ;;
    filters: [stage: "-closedwon,-closedlost"]
  }

  measure: won_amount {
    type: sum
    value_format_name: decimal_2
    sql: ${amount} ;;
    filters: [is_won: "yes"]
  }
}
