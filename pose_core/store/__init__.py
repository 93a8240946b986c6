"""What is kept between runs: settings (the one place env vars are read), uploads, history, tuning."""
