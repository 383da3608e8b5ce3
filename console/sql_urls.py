
app_name = "sql"

urlpatterns: list = []
