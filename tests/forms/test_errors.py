"""Validation errors in plain words, and per-field overrides (transom.forms.errors)."""

from __future__ import annotations

import datetime
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from transom.forms import Messages, plain_message


class Profile(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    nick: str = Field(max_length=5)
    slug: str = Field(pattern=r"^[a-z-]+$", description="lowercase-words")
    code: Annotated[str, Field(pattern=r"^\d+$"), Messages(pattern="Digits only.")]
    age: int = Field(ge=13, le=130)
    score: int = Field(gt=0)
    born: datetime.date
    any_error: Annotated[int, Messages("Give your lucky number.")]


VALID = {
    "title": "t",
    "nick": "n",
    "slug": "a-b",
    "code": "1",
    "age": 20,
    "score": 1,
    "born": "2000-01-01",
    "any_error": 7,
}


def messages(**changes: object) -> dict[str, str]:
    data = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        Profile.model_validate(data)
    return {
        str(e["loc"][0]): plain_message(e, Profile.model_fields[str(e["loc"][0])])
        for e in caught.value.errors()
    }


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"title": ""}, "title", "Enter 1 to 200 characters."),
        ({"title": "x" * 201}, "title", "Enter 1 to 200 characters."),
        ({"nick": "toolong"}, "nick", "Enter at most 5 characters."),
        ({"slug": "Not A Slug"}, "slug", "Enter a value in the right format (lowercase-words)."),
        ({"code": "abc"}, "code", "Digits only."),
        ({"age": "ten"}, "age", "Enter a whole number."),
        ({"age": 5}, "age", "Enter a number from 13 to 130."),
        ({"score": 0}, "score", "Enter a number greater than 0."),
        ({"born": "31/12"}, "born", "Enter a date (YYYY-MM-DD)."),
        ({"title": None}, "title", "This field is required."),
        ({"any_error": "seven"}, "any_error", "Give your lucky number."),
    ],
)
def test_plain_words(changes: dict[str, object], field: str, expected: str) -> None:
    assert messages(**changes)[field] == expected


def test_without_field_information_the_error_kind_still_reads_plainly() -> None:
    error = {
        "type": "string_too_long",
        "msg": "String should have at most 3",
        "ctx": {"max_length": 3},
    }
    assert plain_message(error) == "Enter at most 3 characters."
    custom = {"type": "value_error", "msg": "Value error, Please don't shout."}
    assert plain_message(custom) == "Please don't shout."


def test_password_and_name_fields_say_what_to_autofill() -> None:
    from transom.forms import Form, Widget
    from transom.forms.fields import widget_for

    class Passwords(Form):
        username: str
        email: str
        password: Annotated[str, Widget("password")]
        new_password1: Annotated[str, Widget("password")]
        password2: Annotated[str, Widget("password")]
        pin: Annotated[str, Widget("password", autocomplete="one-time-code")]

    hints = {
        name: widget_for(name, info).attrs.get("autocomplete")
        for name, info in Passwords.model_fields.items()
    }
    assert hints == {
        "username": "username",
        "email": "email",
        "password": "current-password",
        "new_password1": "new-password",
        "password2": "new-password",
        "pin": "one-time-code",
    }
