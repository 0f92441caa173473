package proxy

// pathAllowed reports whether a raw (still percent-encoded) request path is free of what
// makes a gateway and an upstream disagree on the path: "." and ".." segments, raw or
// percent-encoded, also before ";params" (Tomcat reads "..;" as ".."); an encoded "/";
// a raw or encoded "\" (IIS reads it as "/"); a raw or encoded NUL.
func pathAllowed(p string) bool {
	segStart := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if isDotSegment(p[segStart:i]) {
				return false
			}
			segStart = i + 1
			continue
		}
		switch p[i] {
		case '\\', 0:
			return false
		case '%':
			if c, ok := unescape(p, i); ok && (c == '/' || c == '\\' || c == 0) {
				return false
			}
		}
	}
	return true
}

// isDotSegment reports whether a raw segment, up to its first ';', decodes to "." or "..".
func isDotSegment(seg string) bool {
	dots := 0
	for i := 0; i < len(seg) && seg[i] != ';'; {
		switch {
		case seg[i] == '.':
			i++
		case seg[i] == '%':
			if c, ok := unescape(seg, i); !ok || c != '.' {
				return false
			}
			i += 3
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// unescape decodes the escape "%XY" at s[i].
func unescape(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
