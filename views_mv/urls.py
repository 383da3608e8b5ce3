from django.urls import path

from views_mv import views, wizard

app_name = "views_mv"

urlpatterns = [
    path("", views.mv_list, name="list"),
    path("new/", wizard.create, name="create"),
    path("new/<str:step>/", wizard.create_step, name="create_step"),
    path("from/<str:pool>/", views.transform, name="transform"),
    path("<str:name>/", views.mv_detail, name="detail"),
    path("<str:name>/delete/", views.mv_delete, name="delete"),
    path("<str:name>/backfill/retry/", views.mv_retry_backfill, name="retry_backfill"),
    path("<str:name>/replica-check/", views.mv_replica_check, name="replica_check"),
    path("<str:name>/failures/retry/", views.mv_retry_failures, name="retry_failures"),
    path("<str:name>/sql/", views.mv_edit_sql, name="edit_sql"),
    path("<str:name>/rebuild/", views.mv_rebuild, name="rebuild"),
]
