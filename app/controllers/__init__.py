"""Controllers: the open project, the model, fine-tuning and the commands behind the actions, as
the widgets see them."""
