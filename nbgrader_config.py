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

# Grading: a per-cell limit; the whole-notebook limit is enforced by `python -m autograder grade`.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
