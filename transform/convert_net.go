package transform

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// appendInet converts a string to inet or cidr text. It accepts an IPv4
// address (four decimal octets without leading zeros) or an IPv6 address
// (RFC 4291, with or without an embedded IPv4 address), optionally
// followed by /n, n in decimal without leading zeros and at most 32 or
// 128. This is a subset of what PostgreSQL reads, and PostgreSQL reads
// each of these as the same address and prefix length; the rest
// (abbreviated IPv4 such as 10/8, leading zeros, classful cidr defaults)
// is refused here rather than guessed at. IPv6 zones are refused:
// PostgreSQL has none. An IPv4-mapped IPv6 address stays IPv6, as in
// PostgreSQL.
//
// The text is PostgreSQL's own spelling of the value as CAST(v AS text)
// writes it, for inet and cidr alike: the address (appendPGAddr), a slash
// and the prefix length, always (10.0.0.1/32, which psql shows as
// 10.0.0.1). The sink's tombstone keys hold key columns cast to text
// (sink keyText), so a key's text must be the text cast's.
func appendInet(b []byte, t colType, v rawValue) ([]byte, error) {
	if v.typ != bsonString {
		return nil, errType{v.typ, t}
	}
	s := v.str()
	addr, bits, slash := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("string %q is not an IPv4 or IPv6 address for %s (want a.b.c.d or an IPv6 address, optionally with /prefix length)", truncate(s, 60), t)
	}
	if z := a.Zone(); z != "" {
		return nil, fmt.Errorf("string %q has the IPv6 zone %q, which %s cannot store", truncate(s, 60), truncate(z, 20), t)
	}
	n := a.BitLen()
	if slash {
		if n, err = prefixLen(bits, a.BitLen()); err != nil {
			return nil, fmt.Errorf("string %q: %w", truncate(s, 60), err)
		}
	}
	p := netip.PrefixFrom(a, n)
	if t.kind == kCidr {
		if m := p.Masked(); m != p {
			return nil, fmt.Errorf("string %q has bits set right of the mask, which %s refuses (the network is %s)", truncate(s, 60), t, appendPrefix(nil, m))
		}
	}
	return appendPrefix(b, p), nil
}

// prefixLen parses the prefix length after the slash: decimal digits, no
// leading zero, at most maxBits.
func prefixLen(s string, maxBits int) (int, error) {
	n := 0
	ok := len(s) > 0 && len(s) <= 3 && (s[0] != '0' || len(s) == 1)
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9'
		n = n*10 + int(s[i]-'0')
	}
	if !ok || n > maxBits {
		return 0, fmt.Errorf("prefix length %q is not a number from 0 to %d without leading zeros", truncate(s, 20), maxBits)
	}
	return n, nil
}

// appendPrefix appends p as address/length.
func appendPrefix(b []byte, p netip.Prefix) []byte {
	b = appendPGAddr(b, p.Addr())
	b = append(b, '/')
	return strconv.AppendInt(b, int64(p.Bits()), 10)
}

// appendPGAddr appends a as PostgreSQL prints it (inet_net_ntop.c): IPv4
// in dotted decimal; IPv6 in lowercase hex groups without leading zeros,
// the first longest run of two or more zero groups as ::, and the last 32
// bits in dotted decimal when the first 80 bits are zero and the next 16
// are ffff (::ffff:10.0.0.1) or the first 96 are zero and the next 16 are
// not (::10.0.0.1, also ::1:2 as ::0.1.0.2).
func appendPGAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		return a.AppendTo(b)
	}
	ip := a.As16()
	var w [8]int
	for i := range w {
		w[i] = int(ip[2*i])<<8 | int(ip[2*i+1])
	}
	// The first longest run of zero groups, if at least two long.
	best, bestLen := -1, 1
	for i := 0; i < 8; {
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j + 1
	}
	for i := 0; i < 8; i++ {
		if best >= 0 && i >= best && i < best+bestLen {
			if i == best {
				b = append(b, ':')
			}
			continue
		}
		if i > 0 {
			b = append(b, ':')
		}
		if i == 6 && best == 0 && (bestLen == 6 || bestLen == 5 && w[5] == 0xffff) {
			return netip.AddrFrom4([4]byte(ip[12:])).AppendTo(b)
		}
		b = strconv.AppendInt(b, int64(w[i]), 16)
	}
	if best >= 0 && best+bestLen == 8 {
		b = append(b, ':')
	}
	return b
}

// appendMAC converts a string to macaddr or macaddr8 text: the bytes as
// lowercase hex pairs joined by colons.
//
// macaddr accepts the seven layouts PostgreSQL documents, each byte as
// exactly two hex digits of either case: 08:00:2b:01:02:03,
// 08-00-2b-01-02-03, 08002b:010203, 08002b-010203, 0800.2b01.0203,
// 0800-2b01-0203 and 08002b010203. PostgreSQL reads each of them as these
// six bytes; its sscanf also takes one-digit bytes, signs and spaces,
// which are refused here.
//
// macaddr8 accepts what PostgreSQL's macaddr8_in does, less spaces and a
// trailing separator: eight or six bytes, each two hex digits, with an
// optional separator (':', '-' or '.', the same one throughout) after any
// byte but the last. Six bytes become eight as in PostgreSQL, ff and fe
// inserted after the third (08:00:2b:ff:fe:01:02:03).
func appendMAC(b []byte, t colType, v rawValue) ([]byte, error) {
	if v.typ != bsonString {
		return nil, errType{v.typ, t}
	}
	mac, n, sep, after, ok := parseMAC(v.strBytes())
	if t.kind == kMacaddr8 {
		ok = ok && (n == 8 || n == 6)
	} else {
		ok = ok && n == 6 && macLayout(sep, after)
	}
	if !ok {
		if t.kind == kMacaddr8 {
			return nil, fmt.Errorf("string %q is not a MAC address for %s (want 8 or 6 bytes as hex pairs, such as 08:00:2b:01:02:03:04:05)", truncate(v.str(), 60), t)
		}
		return nil, fmt.Errorf("string %q is not a MAC address for %s (want 6 bytes as 08:00:2b:01:02:03, 08-00-2b-01-02-03, 08002b:010203, 08002b-010203, 0800.2b01.0203, 0800-2b01-0203 or 08002b010203)", truncate(v.str(), 60), t)
	}
	if t.kind == kMacaddr8 && n == 6 {
		copy(mac[5:8], mac[3:6])
		mac[3], mac[4] = 0xff, 0xfe
		n = 8
	}
	const digits = "0123456789abcdef"
	for i, c := range mac[:n] {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&15])
	}
	return b, nil
}

// parseMAC reads hex pairs of either case, each but the last optionally
// followed by a separator: ':', '-' or '.', the same one throughout. n
// counts the bytes (at most 8); bit i of after is set when a separator
// follows byte i.
func parseMAC(s []byte) (mac [8]byte, n int, sep byte, after uint8, ok bool) {
	for i := 0; i < len(s); n++ {
		if n == len(mac) || len(s)-i < 2 {
			return mac, 0, 0, 0, false
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return mac, 0, 0, 0, false
		}
		mac[n] = hi<<4 | lo
		i += 2
		if i < len(s) && (s[i] == ':' || s[i] == '-' || s[i] == '.') {
			if sep != 0 && s[i] != sep || i+1 == len(s) {
				return mac, 0, 0, 0, false
			}
			sep = s[i]
			after |= 1 << n
			i++
		}
	}
	return mac, n, sep, after, true
}

// macLayout reports whether the separators of six bytes form one of
// macaddr's layouts.
func macLayout(sep byte, after uint8) bool {
	switch after {
	case 0: // 08002b010203
		return true
	case 0b11111: // 08:00:2b:01:02:03
		return sep == ':' || sep == '-'
	case 0b100: // 08002b:010203
		return sep == ':' || sep == '-'
	case 0b1010: // 0800.2b01.0203
		return sep == '.' || sep == '-'
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
