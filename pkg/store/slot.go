package store

import "strconv"

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

// Slot returns the Redis Cluster hash slot of key: CRC16 of the key, or of
// its hash tag (the part between the first '{' and the next '}', when not
// empty), modulo 16384, as the cluster specification defines it.
//
// It is written here rather than taken from go-redis, whose function is in
// an internal package; the doorbell needs it for every channel it watches
// and to find probe keys on each shard, and asking Redis (CLUSTER KEYSLOT)
// would cost a round trip per key.
func Slot(key string) int {
	return int(crc16(hashTag(key)) % SlotCount)
}

// hashTag returns the part of key that is hashed.
func hashTag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j == i+1 {
					return key // "{}": the whole key is hashed
				}
				return key[i+1 : j]
			}
		}
		return key
	}
	return key
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0, no
// reflection), the variant the cluster specification names.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// tagIn returns a hash tag whose slot is one for which owned is true, found
// by trying "0", "1", … in turn: with the slots spread over S shards about
// S tries, at worst (one slot) a few tens of thousands of CRCs. It returns
// false when owned holds no slot.
func tagIn(owned func(slot int) bool) (string, bool) {
	for i := range 1 << 20 {
		tag := strconv.Itoa(i)
		if owned(int(crc16(tag) % SlotCount)) {
			return tag, true
		}
	}
	return "", false
}
