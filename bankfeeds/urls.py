from django.urls import path

from bankfeeds import views

app_name = "bankfeeds"

urlpatterns = [
    path("link/<str:signed>/", views.link, name="link"),
    path("mapping/", views.mapping, name="mapping"),
]
