view: companies {
  sql_table_name: crm_published.companies ;;


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

  dimension: name {
    type: string
    sql: ${TABLE}.name ;;
  }

  dimension: domain {
    type: string
    sql: ${TABLE}.domain ;;
  }

  dimension: industry {
    type: string
    sql: ${TABLE}.industry ;;
  }

  dimension: employee_count {
    type: number
    sql: ${TABLE}.employee_count ;;
  }

  dimension: size_band {
    type: tier
    tiers: [10, 50, 250, 1000]
    style: integer
    sql: ${employee_count} ;;
  }

  dimension_group: created {
    type: time
    timeframes: [raw, time, date, week, month, quarter, year]
    sql: ${TABLE}.created_at ;;
  }

  measure: count {
    type: count
    drill_fields: [id, name, domain, industry]
  }
}
