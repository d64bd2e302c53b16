"""The API's data contract (pydantic request and response models), shared by the routes and the services that
build answers."""
