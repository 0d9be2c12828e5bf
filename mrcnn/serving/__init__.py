"""Running the model: the model session, its child process, and predicting a project."""
