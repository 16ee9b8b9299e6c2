# one concert of 100 dates x 10 seats; list each date's seats once (each a first map load), print latencies
import http.client, json, time, uuid
H,P="127.0.0.1",18383
c=http.client.HTTPConnection(H,P,timeout=30)
def r(m,p,b=None,t=None):
    h={}
    if b is not None: h["content-type"]="application/json"
    if t: h["authorization"]="Bearer "+t
    t0=time.perf_counter(); c.request(m,p,json.dumps(b) if b is not None else None,h); x=c.getresponse(); raw=x.read()
    return x.status,(json.loads(raw) if raw else None),(time.perf_counter()-t0)*1000
st,cc,_=r("POST","/api/v1/concerts",{"title":"manydates","dates":[{"starts_at":f"2027-07-{1+i//4:02d}T{10+i%4}:00:00Z","seats":10,"price":1000} for i in range(100)]},"bench")
cid=cc["concert_id"]; dids=[d["date_id"] for d in cc["dates"]]
uid=str(uuid.uuid4()); st,u,_=r("POST",f"/api/v1/users/{uid}/tokens",{},"bench"); ut=u["token"]
st,q,_=r("POST","/api/v1/queue/tokens",{"concert_id":cid},ut); qt=q["token"]
while r("GET","/api/v1/queue/tokens/current",t=qt)[1]["status"]!="active": time.sleep(0.1)
lat=[round(r("GET",f"/api/v1/concerts/{cid}/dates",t=qt)[2],1) for _ in range(3)]
print("dates listing of a fresh 100-date concert, 3 times (ms):", lat)
