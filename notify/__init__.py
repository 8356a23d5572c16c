"""Notifications to people who are not connected: e-mail over SMTP (`notify.email`)."""
