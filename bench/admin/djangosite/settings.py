"""Django settings of the admin benchmark: a stock admin over the same tables."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/admin, for common.py

from common import DATABASE_URL, ENGINE

_url = make_url(DATABASE_URL)

if ENGINE == "mariadb":
    import pymysql

    # Django asks for mysqlclient; PyMySQL stands in for it (the same DB-API).
    pymysql.version_info = (2, 2, 1, "final", 0)
    pymysql.install_as_MySQLdb()

DEBUG = False
SECRET_KEY = "bench-secret-key"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "djangosite.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djangosite.benchapp",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql"
        if ENGINE == "mariadb"
        else "django.db.backends.postgresql",
        "NAME": _url.database,
        "USER": _url.username or ("root" if ENGINE == "mariadb" else "postgres"),
        "PASSWORD": _url.password or "",
        "HOST": _url.host or "127.0.0.1",
        "PORT": _url.port or (3306 if ENGINE == "mariadb" else 5432),
        "CONN_MAX_AGE": 600,
        **({"OPTIONS": {"charset": "utf8mb4"}} if ENGINE == "mariadb" else {}),
    }
}
STATIC_URL = "/static/"
LOGGING_CONFIG = None
