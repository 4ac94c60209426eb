view: customers {
  sql_table_name: payments_published.customers ;;


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

  dimension: email {
    label: "Email (hashed)"
    description: "SHA-256 of the billing email, hashed by Fivetran; safe to show and join on."
    type: string
    sql: ${TABLE}.email ;;
  }

  dimension: name {
    description: "Customer's full name, raw: only users granted can_see_pii see it."
    type: string
    sql: ${TABLE}.name ;;
    required_access_grants: [can_see_pii]
  }

  dimension: country {
    type: string
    map_layer_name: countries
    sql: ${TABLE}.country ;;
  }

  dimension: is_delinquent {
    type: yesno
    sql: ${TABLE}.delinquent ;;
  }

  dimension_group: created {
    type: time
    timeframes: [raw, time, date, week, month, quarter, year]
    sql: ${TABLE}.created ;;
  }

  measure: count {
    type: count
    drill_fields: [id, country, created_date]
  }

  measure: delinquent_count {
    type: count
    filters: [is_delinquent: "yes"]
  }
}
