connection: "warehouse"
label: "CRM"

include: "/views/crm/*.view.lkml"

# Triggered by tollgate through the API once the crm checks pass (see payments.model.lkml).
datagroup: crm_etl {
  label: "CRM ETL"
  description: "Triggered by tollgate after the crm tables pass their data contract."
  max_cache_age: "168 hours"
}

persist_with: crm_etl

access_grant: can_see_pii {
  user_attribute: can_see_pii
  allowed_values: ["yes"]
}

explore: deals {
  label: "Deals"
  description: "HubSpot deals with their company and primary contact."
  sql_always_where: NOT ${deals.is_deleted} ;;

  join: companies {
    type: left_outer
    relationship: many_to_one
    sql_on: ${deals.company_id} = ${companies.id} AND NOT ${companies.is_deleted} ;;
  }

  join: contacts {
    type: left_outer
    relationship: many_to_one
    sql_on: ${deals.contact_id} = ${contacts.id} AND NOT ${contacts.is_deleted} ;;
  }
}

# Data test: tollgate runs it through the API (run_lookml_test) before any refresh.
test: deal_ids_are_unique_in_the_deals_explore {
  explore_source: deals {
    column: id { field: deals.id }
    column: count { field: deals.count }
    sorts: [deals.count: desc]
    limit: 1
  }
  assert: one_row_per_deal {
    expression: ${deals.count} = 1 ;;
  }
}
