view: contacts {
  sql_table_name: crm_published.contacts ;;


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

  dimension: email {
    label: "Email (hashed)"
    description: "SHA-256 of the email, hashed by Fivetran; safe to show and join on."
    type: string
    sql: ${TABLE}.email ;;
  }

  dimension: phone {
    label: "Phone (hashed)"
    description: "SHA-256 of the phone number, hashed by Fivetran."
    type: string
    sql: ${TABLE}.phone ;;
  }

  dimension: first_name {
    description: "Contact's first name, raw: only users granted can_see_pii see it."
    type: string
    sql: ${TABLE}.first_name ;;
    required_access_grants: [can_see_pii]
  }

  dimension: job_title {
    type: string
    sql: ${TABLE}.job_title ;;
  }

  dimension: lifecycle_stage {
    type: string
    sql: ${TABLE}.lifecycle_stage ;;
  }

  dimension_group: created {
    type: time
    timeframes: [raw, time, date, week, month, quarter, year]
    sql: ${TABLE}.created_at ;;
  }

  measure: count {
    type: count
    drill_fields: [id, job_title, lifecycle_stage]
  }
}
