from tenants.app import create_app

app = create_app()
