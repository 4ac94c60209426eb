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

  join: customers {
    type: left_outer
    relationship: many_to_one
    sql_on: ${charges.customer_id} = ${customers.id} ;;
  }

  join: invoices {
    type: left_outer
    relationship: many_to_one
    sql_on: ${charges.invoice_id} = ${invoices.id} ;;
  }
}

explore: revenue_by_customer {
  label: "Revenue by Customer"
  description: "Succeeded charge totals per customer and currency (a PDT rebuilt by tollgate)."
}
