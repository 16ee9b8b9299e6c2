import socket, threading, time, json
class SSE:
    """minimal SSE reader over a raw socket; records (event, id, data, t)"""
    def __init__(self, port, path, token, last_id=None, name=""):
        self.events=[]; self.closed=False; self.name=name; self.status=None; self.headers=""
        self.s=socket.create_connection(("127.0.0.1",port),timeout=120)
        h=f"GET /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n"
        if last_id is not None: h+=f"Last-Event-ID: {last_id}\r\n"
        self.s.sendall((h+"\r\n").encode())
        self.t=threading.Thread(target=self.run,daemon=True); self.t.start()
    def run(self):
        buf=b""; body=False; chunked=False; raw=b""
        f=self.s.makefile("rb")
        try:
            line=f.readline(); self.status=int(line.split()[1])
            while True:
                l=f.readline()
                if l in (b"\r\n",b"\n",b""): break
                self.headers+=l.decode()
            chunked="chunked" in self.headers.lower()
            def data_iter():
                if chunked:
                    while True:
                        sz=f.readline()
                        if not sz: return
                        n=int(sz.strip() or b"0",16)
                        if n==0: return
                        yield f.read(n); f.readline()
                else:
                    while True:
                        d=f.read1(65536)
                        if not d: return
                        yield d
            cur={}; pend=b""
            for d in data_iter():
                pend+=d
                while b"\n" in pend:
                    l,pend=pend.split(b"\n",1); l=l.rstrip(b"\r").decode()
                    if l=="":
                        if cur: cur['t']=time.time(); self.events.append(cur); cur={}
                    elif l.startswith(":"): pass
                    else:
                        k,_,v=l.partition(":"); v=v[1:] if v.startswith(" ") else v
                        if k=="data": cur['data']=cur.get('data','')+v
                        else: cur[k]=v
        except Exception as e:
            self.err=repr(e)
        self.closed=True
    def close(self):
        try: self.s.shutdown(socket.SHUT_RDWR)
        except Exception: pass
        self.s.close()
