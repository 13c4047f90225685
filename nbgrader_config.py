"""nbgrader configuration for instructors working from the repository root.

`python -m autograder ...` (see autograder/README.md) reads this too; plain `nbgrader` commands and
formgrader keep working from here.
"""

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "trainlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# Release: deterministic, outputs cleared, solutions and hidden tests stripped.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading: a per-cell limit; the whole-notebook limit is enforced by `python -m autograder grade`, which also
# decides every score outside the student's kernel (hidden checks record, the grader compares: see
# autograder/README.md, "Writing hidden checks").
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Late submissions (timestamp.txt after the due date set with `nbgrader db assignment add NAME --duedate ...`):
# "none" records how late, "zero" also scores the notebook 0. `python -m autograder grade` applies it.
c.LateSubmissionPlugin.penalty_method = "none"

# Feedback, also from formgrader's "Generate Feedback" and `nbgrader generate_feedback` (nbgrader's default shows
# the hidden tests): hidden source and what the hidden blocks printed or raised removed, each test cell's
# trusted verdict added (autograder/feedback.py). Needs `autograder` importable (the course's venv).
from autograder.feedback import FEEDBACK_PREPROCESSORS  # noqa: E402

c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
