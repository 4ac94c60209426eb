connection: "warehouse"
label: "Payments"

include: "/views/payments/*.view.lkml"
include: "/dashboards/*.dashboard.lookml"

# The views read payments_published.*, which tollgate points at a table's audited snapshot only
# once every blocking check passed on it; Fivetran's landing schema (payments.*) is never read.
# No sql_trigger: tollgate resets this datagroup through the API after it publishes.
datagroup: payments_etl {
  label: "Payments ETL"
  description: "Triggered by tollgate after the payments tables pass their data contract."
  max_cache_age: "168 hours"
}

persist_with: payments_etl

access_grant: can_see_pii {
  user_attribute: can_see_pii
  allowed_values: ["yes"]
}

explore: charges {
  label: "Charges"
  description: "Stripe charges with the paying customer and the invoice they settle."
  sql_always_where: NOT ${charges.is_deleted} ;;

  join: customers {
    type: left_outer
    relationship: many_to_one
    sql_on: ${charges.customer_id} = ${customers.id} AND NOT ${customers.is_deleted} ;;
  }

  join: invoices {
    type: left_outer
    relationship: many_to_one
    sql_on: ${charges.invoice_id} = ${invoices.id} AND NOT ${invoices.is_deleted} ;;
  }
}

explore: revenue_by_customer {
  label: "Revenue by Customer"
  description: "Succeeded charge totals per customer and currency (a PDT rebuilt by tollgate)."
}

# Data tests: tollgate runs them through the API (run_lookml_test) before any refresh.
test: charge_ids_are_unique_in_the_charges_explore {
  explore_source: charges {
    column: id { field: charges.id }
    column: count { field: charges.count }
    sorts: [charges.count: desc]
    limit: 1
  }
  assert: one_row_per_charge {
    expression: ${charges.count} = 1 ;;
  }
}

test: average_succeeded_charge_is_plausible {
  explore_source: charges {
    column: average_succeeded_amount { field: charges.average_succeeded_amount }
  }
  # Amounts arrive in cents and are shown in major units: a unit change moves this by 100x.
  assert: between_5_and_2000 {
    expression: ${charges.average_succeeded_amount} > 5 AND ${charges.average_succeeded_amount} < 2000 ;;
  }
}

test: revenue_per_customer_is_positive {
  explore_source: revenue_by_customer {
    column: customer_id { field: revenue_by_customer.customer_id }
    column: total_revenue { field: revenue_by_customer.total_revenue }
    sorts: [revenue_by_customer.total_revenue: asc]
    limit: 1
  }
  assert: smallest_revenue_is_positive {
    expression: ${revenue_by_customer.total_revenue} > 0 ;;
  }
}
