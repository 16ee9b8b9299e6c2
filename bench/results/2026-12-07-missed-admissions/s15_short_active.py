# DB concert (QMAX=5): tokens admitted and spent by a payment within a few tens of ms; does every standing stream show "active"?
import os, sys, random; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from lib import *; from sse import SSE
from concurrent.futures import ThreadPoolExecutor
P=[20390,20391,20392]; N=int(os.environ.get("N","100")); SSEP=int(os.environ.get("SSEP","20392"))
c=create_concert(P[0], seats=N+10, price=10); cid=c['concert_id']; did=c['dates'][0]['date_id']
with ThreadPoolExecutor(30) as ex:
    users=list(ex.map(lambda i: user_token(P[0]), range(N)))
    list(ex.map(lambda u: req(P[1],"POST",f"/users/{u[0]}/balance/charges",{"amount":1000},token=u[1]), users))
# learn seat ids with a first token
res=[enter(P[i%3],users[i][1],cid) for i in range(N)]
toks=[b['token'] for s,b in res]
subs=[SSE(SSEP,"/queue/tokens/current/events",t) for t in toks]
wait_active(P[0],toks[0])
s,l=req(P[0],"GET",f"/concerts/{cid}/dates/{did}/seats?limit=5000",token=toks[0]); seats=[x['seat_id'] for x in l['seats']]
act_dur={}
def user(i):
    q=toks[i]; port=P[i%3]
    while True:
        s,b=current(port,q)
        if b['status']=='active': break
        time.sleep(0.02)
    t0=time.time()
    s,h=req(port,"POST","/reservations",{"seat_id":seats[i]},token=q)
    s,b=req(port,"POST","/payments",{"reservation_id":h['reservation_id']},token=q)
    act_dur[i]=time.time()-t0
with ThreadPoolExecutor(N) as ex: list(ex.map(user, range(N)))
time.sleep(4)
ev=all_events(P[0]); adm={}; expd={}; u2t={}
from datetime import datetime
f=lambda z: datetime.fromisoformat(z.replace('Z','+00:00')).timestamp()
for e in ev:
    if e['event_type']=='QueueEntered' and e['payload']['QueueEntered']['concert_id']==cid: u2t[e['payload']['QueueEntered']['user_id']]=e['aggregate_id']
for e in ev:
    if e['event_type']=='TicketAdmitted': adm[e['aggregate_id']]=(e['position'],f(e['payload']['TicketAdmitted']['admitted_at']))
    if e['event_type']=='TicketExpired': expd[e['aggregate_id']]=(e['position'],f(e['payload']['TicketExpired']['expired_at']))
cnt=collections.Counter(); ex_=[]
for i,sb in enumerate(subs):
    seq=tuple(dict.fromkeys(json.loads(e['data'])['status'] for e in sb.events if e.get('event')=='standing'))
    cnt[(seq, sb.closed)]+=1
    if 'active' not in seq and len(ex_)<5: ex_.append((i, round(act_dur.get(i,0),3), "log: admitted pos %d, expired pos %d, active for %.3fs"%(adm[u2t[users[i][0]]][0],expd[u2t[users[i][0]]][0],expd[u2t[users[i][0]]][1]-adm[u2t[users[i][0]]][1]), [(e.get('id'),json.loads(e['data'])['status']) for e in sb.events]))
    sb.close()
print(dict(cnt)); print(*ex_,sep="\n")
