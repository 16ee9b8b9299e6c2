import socket, uuid, sys, time, os
env = dict(l.strip().split('=',1) for l in open('/tmp/review47/env.sh'))
C, T = env['C'], env['T']
n = int(sys.argv[1]); mode = sys.argv[2]
for i in range(n):
    s = socket.create_connection(('127.0.0.1', 18747))
    d = uuid.uuid4()
    req = (f"GET /api/v1/concerts/{C}/dates/{d}/seats HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: Bearer {T}\r\n\r\n").encode()
    s.sendall(req)
    if mode == 'close':
        s.close()
    else:
        s.recv(4096); s.close()
