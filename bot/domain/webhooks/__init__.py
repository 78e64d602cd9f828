"""Web requests as the domain knows them: the template and pending delivery (`model`), how a
request is rendered from a task's moment (`template`) and how it is signed (`signing`)."""
