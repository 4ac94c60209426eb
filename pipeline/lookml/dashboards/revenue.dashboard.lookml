- dashboard: revenue
  title: Revenue
  description: Succeeded charges and revenue per customer; refreshed only after the payments contract passes.
  layout: newspaper
  preferred_viewer: dashboards-next
  filters:
  - name: country
    title: Country
    type: field_filter
    default_value: ''
    allow_multiple_values: true
    model: payments
    explore: charges
    field: customers.country
  elements:
  - name: revenue_by_month
    title: Succeeded charges by month
    model: payments
    explore: charges
    type: looker_column
    fields: [charges.created_month, charges.currency, charges.succeeded_amount]
    pivots: [charges.currency]
    fill_fields: [charges.created_month]
    sorts: [charges.created_month desc]
    limit: 24
    listen:
      country: customers.country
    row: 0
    col: 0
    width: 16
    height: 8
  - name: failed_charges
    title: Failed charges
    model: payments
    explore: charges
    type: single_value
    fields: [charges.failed_count]
    listen:
      country: customers.country
    row: 0
    col: 16
    width: 8
    height: 4
  - name: outstanding_invoices
    title: Outstanding invoices
    model: payments
    explore: charges
    type: single_value
    fields: [invoices.total_outstanding]
    listen:
      country: customers.country
    row: 4
    col: 16
    width: 8
    height: 4
  - name: top_customers
    title: Top customers by revenue
    model: payments
    explore: revenue_by_customer
    type: looker_grid
    fields: [revenue_by_customer.customer_id, revenue_by_customer.country, revenue_by_customer.currency,
      revenue_by_customer.charge_count, revenue_by_customer.total_revenue]
    sorts: [revenue_by_customer.total_revenue desc]
    limit: 25
    listen:
      country: revenue_by_customer.country
    row: 8
    col: 0
    width: 24
    height: 8
