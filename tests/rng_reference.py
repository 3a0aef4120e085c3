# Independent Python implementation of libsadm's RNG (Philox-4x32-10 + Box-Muller), used once to
# compute the expected sequences committed in tests/test_rng.c. Run: python3 tests/rng_reference.py
import math
M0,M1,W0,W1=0xD2511F53,0xCD9E8D57,0x9E3779B9,0xBB67AE85
def philox(c,k):
    c=list(c);k=list(k)
    for _ in range(10):
        p0=M0*c[0]; p1=M1*c[2]
        c=[((p1>>32)^c[1]^k[0])&0xffffffff, p1&0xffffffff, ((p0>>32)^c[3]^k[1])&0xffffffff, p0&0xffffffff]
        k=[(k[0]+W0)&0xffffffff,(k[1]+W1)&0xffffffff]
    return c
assert philox([0]*4,[0,0])==[0x6627e8d5,0xe169c58d,0xbc57ac4c,0x9b00dbd8]
assert philox([0xffffffff]*4,[0xffffffff]*2)==[0x408f276d,0x41c83b0e,0xa20bc7c6,0x6d5451fd]
assert philox([0x243f6a88,0x85a308d3,0x13198a2e,0x03707344],[0xa4093822,0x299f31d0])==[0xd16cfe09,0x94fdcceb,0x5001e420,0x24126ea1]
import struct
def f32(x): return struct.unpack('f',struct.pack('f',x))[0]
def blk(seed,stream,b): return philox([b&0xffffffff,b>>32,stream&0xffffffff,stream>>32],[seed&0xffffffff,seed>>32])
def unit(u): return ((u>>8)+0.5)/16777216.0
seed=0x123456789abcdef; stream=5
U=[];N=[]
for b in range(3):
    w=blk(seed,stream,b)
    U+= [f32(unit(x)) for x in w]
    for h in range(2):
        r=math.sqrt(-2*math.log(unit(w[2*h]))); th=2*math.pi*unit(w[2*h+1])
        N+=[f32(r*math.cos(th)), f32(r*math.sin(th))]
print("uniform", ", ".join("%.9gf"%x for x in U))
print("normal", ", ".join("%.9gf"%x for x in N))
