project_name: "tollgate"
