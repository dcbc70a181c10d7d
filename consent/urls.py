from django.urls import path

from consent import views

app_name = "consent"

urlpatterns = [
    path("", views.request_page, name="request"),
    path("link/<str:token>/", views.link, name="link"),
    path("manage/", views.manage, name="manage"),
    path("manage/link/<str:signed>/", views.manage_link, name="manage_link"),
    path("manage/withdraw/", views.withdraw, name="withdraw"),
    path("manage/reconfirm/", views.reconfirm, name="reconfirm"),
    path("receipt/<uuid:receipt_id>/", views.receipt, name="receipt"),
    path("receipt/<uuid:receipt_id>.json", views.receipt_json, name="receipt_json"),
]
