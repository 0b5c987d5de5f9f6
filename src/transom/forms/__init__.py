"""Server-rendered forms declared as Pydantic models, and flash messages.

::

    class ArticleForm(Form):
        title: str = Field(min_length=3, max_length=200)
        body: Annotated[str, Widget("textarea")] = ""
        category: Literal["news", "howto"]

    @app.route("/articles/new", methods=["GET", "POST"])
    async def new_article(request: Request):
        form = await ArticleForm.from_request(request)
        if form.is_valid:
            save(form.data)
            return RedirectResponse("/articles", 303)
        return render("new.html", form=await form.with_csrf(), status_code=form.status_code)
"""

from __future__ import annotations

from transom.forms.base import BoundForm, Form
from transom.forms.errors import Messages, plain_message
from transom.forms.fields import BoundField, Widget
from transom.forms.messages import flash, get_flashed_messages

__all__ = [
    "BoundField",
    "BoundForm",
    "Form",
    "Messages",
    "Widget",
    "flash",
    "get_flashed_messages",
    "plain_message",
]
