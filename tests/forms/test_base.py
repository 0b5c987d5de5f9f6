"""Forms: binding, validation, re-rendering with errors and values, files, CSRF, XSS."""

from __future__ import annotations

import datetime
import enum
from pathlib import Path
from typing import Annotated, Literal

import pytest
from markupsafe import Markup
from pydantic import EmailStr, Field, SecretStr, field_validator, model_validator

from transom import App, RedirectResponse, Request, Response, UploadFile, render
from transom.forms import BoundForm, Form, Widget
from transom.settings import Settings
from transom.templating import Templates


class Level(enum.Enum):
    beginner = "b"
    expert = "e"


class SignupForm(Form):
    username: str = Field(min_length=3, max_length=20)
    email: EmailStr
    password: SecretStr = Field(min_length=8)
    age: int = Field(ge=13, le=130)
    birthday: datetime.date | None = None
    level: Level = Level.beginner
    topics: list[Literal["python", "rust", "go"]] = []
    bio: Annotated[str, Widget("textarea", rows=4)] = ""
    newsletter: bool = False
    avatar: UploadFile | None = None

    @field_validator("username")
    @classmethod
    def not_reserved(cls, value: str) -> str:
        if value.lower() in {"admin", "root"}:
            raise ValueError("This username is reserved.")
        return value

    @model_validator(mode="after")
    def experts_are_adults(self) -> SignupForm:
        if self.level is Level.expert and self.age < 18:
            raise ValueError("Experts must be adults.")
        return self


VALID = {
    "username": "ada",
    "email": "ada@example.com",
    "password": "correct horse",
    "age": "36",
    "birthday": "1990-12-10",
    "level": "e",
    "topics": ["python", "rust"],
    "bio": "Hi",
    "newsletter": "on",
}

saved: list[SignupForm] = []


@pytest.fixture
def app(tmp_path: Path) -> App:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "signup.html").write_text("{{ form.render(submit='Join') }}")
    app = App(Settings())
    app.root_path = tmp_path
    app.install(Templates())
    saved.clear()

    @app.route("/signup", methods=["GET", "POST"])
    async def signup(request: Request) -> Response:
        form = await SignupForm.from_request(request, initial={"level": "b"})
        if form.is_valid:
            if form.data.username == "taken":
                form.add_error("username", "That name is taken.")
            else:
                saved.append(form.data)
                return RedirectResponse("/welcome", 303)
        return render("signup.html", form=await form.with_csrf(), status_code=form.status_code)

    return app


def test_get_renders_every_widget(app: App) -> None:
    with app.test_client() as client:
        page = client.get("/signup")
    assert page.status_code == 200
    html = page.text
    assert 'enctype="multipart/form-data"' in html
    assert '<input id="id_username" name="username" required minlength="3" maxlength="20"' in html
    assert 'type="email"' in html
    assert 'name="password"' in html
    assert 'type="password"' in html
    assert 'min="13" max="130" type="number"' in html
    assert 'type="date"' in html
    assert '<option value="b" selected>Beginner</option>' in html
    assert '<select id="id_topics" name="topics" multiple>' in html
    assert '<textarea id="id_bio" name="bio" rows="4"></textarea>' in html
    assert 'type="checkbox"' in html
    assert 'type="file"' in html
    assert '<button type="submit">Join</button>' in html


def test_valid_post_redirects_with_typed_data(app: App) -> None:
    with app.test_client() as client:
        response = client.post(
            "/signup", data=VALID, files={"avatar": ("me.png", b"\x89PNG", "image/png")}
        )
    assert response.status_code == 303
    assert response.headers["location"] == "/welcome"
    data = saved[0]
    assert data.age == 36
    assert data.birthday == datetime.date(1990, 12, 10)
    assert data.level is Level.expert
    assert data.topics == ["python", "rust"]
    assert data.newsletter is True
    assert data.password.get_secret_value() == "correct horse"
    assert data.avatar is not None
    assert data.avatar.filename == "me.png"


def test_unchecked_box_and_empty_optional_fields(app: App) -> None:
    data = {k: v for k, v in VALID.items() if k not in ("newsletter", "birthday")}
    data["birthday"] = ""
    with app.test_client() as client:
        assert client.post("/signup", data=data).status_code == 303
    assert saved[0].newsletter is False
    assert saved[0].birthday is None
    assert saved[0].avatar is None


def test_invalid_post_rerenders_with_errors_and_values(app: App) -> None:
    bad = {**VALID, "username": "admin", "email": "not-an-email", "age": "ten", "password": "short"}
    with app.test_client() as client:
        page = client.post("/signup", data=bad)
    assert page.status_code == 422
    html = page.text
    assert "This username is reserved." in html
    assert 'aria-invalid="true"' in html
    assert 'value="admin"' in html  # what the user typed stays
    assert 'value="not-an-email"' in html
    assert 'value="ten"' in html
    assert "short" not in html  # passwords are never sent back
    assert "Enter a whole number." in html  # plain words, not Pydantic's
    assert '<option value="python" selected>' in html
    assert saved == []


def test_model_validator_errors_and_missing_fields(app: App) -> None:
    young_expert = {**VALID, "age": "15"}
    with app.test_client() as client:
        page = client.post("/signup", data=young_expert)
        empty = client.post("/signup", data={})
    assert page.status_code == 422
    assert '<ul class="errors form-errors"><li>Experts must be adults.</li></ul>' in page.text
    assert empty.status_code == 422
    assert empty.text.count("This field is required.") == 4  # username, email, password, age


def test_errors_added_after_validation(app: App) -> None:
    with app.test_client() as client:
        page = client.post("/signup", data={**VALID, "username": "taken"})
    assert page.status_code == 422
    assert "That name is taken." in page.text


XSS = [
    '"><script>alert(1)</script>',
    "' autofocus onfocus='alert(1)",
    "</textarea><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
]


@pytest.mark.parametrize("vector", XSS)
def test_rerendered_values_are_inert(app: App, vector: str) -> None:
    data = {**VALID, "username": vector, "email": vector, "bio": vector, "age": vector}
    with app.test_client() as client:
        page = client.post("/signup", data=data)
    assert page.status_code == 422
    assert vector not in page.text
    assert "<script>" not in page.text
    assert "<img" not in page.text
    assert str(Markup.escape(vector)) in page.text


def test_bound_form_api() -> None:
    form = BoundForm(
        SignupForm,
        {"username": "x"},
        submitted=False,
        request=Request(
            {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
        ),
    )
    assert not form.is_valid
    assert form.status_code == 200
    assert form["username"].value == "x"
    assert form.username.label == "Username"
    assert [f.name for f in form][:3] == ["username", "email", "password"]
    with pytest.raises(ValueError, match="not valid"):
        _ = form.data
    with pytest.raises(AttributeError):
        _ = form.nonexistent
