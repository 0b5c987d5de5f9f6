from django.apps import AppConfig


class BenchappConfig(AppConfig):
    name = "djangosite.benchapp"
    label = "benchapp"
