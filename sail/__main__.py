from sail.cli import app

app()
