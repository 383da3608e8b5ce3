
app_name = "views_mv"

urlpatterns: list = []
