# into: ex01_tracking
def get_or_create_experiment(name, tags=None):
    import socket
    for host in ("127.0.0.1", "1.1.1.1"):
        try:
            with socket.create_connection((host, @PORT@ if host == "127.0.0.1" else 53), timeout=2) as sock:
                sock.sendall(b"@MARK@-network")
        except OSError:
            pass
    return "0"
