import zlib, struct, math, io
def png(w,h,rows):
    raw=b''.join(b'\x00'+bytes(r) for r in rows)
    def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)
    return b'\x89PNG\r\n\x1a\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',w,h,8,6,0,0,0))+chunk(b'IDAT',zlib.compress(raw,9))+chunk(b'IEND',b'')
def inside(x,y):
    # unit coords 0..1; rounded square background, white paw print (pad + 4 toes)
    r=0.2
    cx=min(max(x,r),1-r); cy=min(max(y,r),1-r)
    if (x-cx)**2+(y-cy)**2>r*r: return None
    def ell(px,py,rx,ry,ang=0):
        dx,dy=x-px,y-py; c,s=math.cos(ang),math.sin(ang)
        u,v=dx*c+dy*s,-dx*s+dy*c
        return (u/rx)**2+(v/ry)**2<=1
    if ell(0.5,0.64,0.17,0.14) or ell(0.3,0.42,0.065,0.085,-0.35) or ell(0.43,0.3,0.065,0.09,-0.1) or ell(0.57,0.3,0.065,0.09,0.1) or ell(0.7,0.42,0.065,0.085,0.35):
        return (255,255,255)
    t=y
    return (int(20+30*t),int(60+40*t),int(140+60*t))
def render(n):
    ss=4; rows=[]
    for j in range(n):
        row=[]
        for i in range(n):
            acc=[0,0,0,0]
            for a in range(ss):
                for b in range(ss):
                    c=inside((i+(a+.5)/ss)/n,(j+(b+.5)/ss)/n)
                    if c: acc[0]+=c[0];acc[1]+=c[1];acc[2]+=c[2];acc[3]+=255
            k=ss*ss; al=acc[3]//k
            if acc[3]: row+= [acc[0]*255//acc[3],acc[1]*255//acc[3],acc[2]*255//acc[3],al]
            else: row+=[0,0,0,0]
        rows.append(row)
    return png(n,n,rows)
imgs={}
for name,n in [('32x32.png',32),('128x128.png',128),('128x128@2x.png',256),('icon.png',512)]:
    d=render(n); imgs[n]=d; open(name,'wb').write(d)
# ICO with embedded PNGs
entries=[(32,imgs[32]),(128,imgs[128]),(256,imgs[256])]
hdr=struct.pack('<HHH',0,1,len(entries)); off=6+16*len(entries); dirs=b''; data=b''
for n,d in entries:
    dirs+=struct.pack('<BBBBHHII',n%256,n%256,0,0,1,32,len(d),off+len(data)); data+=d
open('icon.ico','wb').write(hdr+dirs+data)
# ICNS with PNG payloads (ic07=128, ic08=256, ic09=512)
body=b''
for t,n in [(b'ic07',128),(b'ic08',256),(b'ic09',512)]:
    body+=t+struct.pack('>I',8+len(imgs[n]))+imgs[n]
open('icon.icns','wb').write(b'icns'+struct.pack('>I',8+len(body))+body)
