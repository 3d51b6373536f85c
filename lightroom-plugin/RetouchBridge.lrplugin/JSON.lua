--[[ JSON encoder and decoder for Lightroom's Lua 5.1 (Lightroom ships none).

JSON.encode(value) -> string          raises on NaN, infinity, cycles, bad keys
JSON.decode(text)  -> value | nil, err never raises on bad input: returns nil and a message
JSON.null         sentinel for an explicit null (decode keeps null values in arrays/objects)
JSON.array(t)     marks t so an empty t encodes as [] instead of {}

Object keys are written sorted so that the same table always gives the same bytes.
]]

local JSON = {}

JSON.null = setmetatable({}, { __tostring = function() return "null" end })

local arrayMarker = {}

function JSON.array(t)
	return setmetatable(t or {}, arrayMarker)
end

-- Encoding -------------------------------------------------------------------

local escapes = {
	['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
	['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function encodeString(s)
	return '"' .. s:gsub('[%c"\\]', function(c)
		return escapes[c] or string.format('\\u%04x', c:byte())
	end) .. '"'
end

local function encodeNumber(n)
	if n ~= n or n == math.huge or n == -math.huge then
		error("JSON cannot represent " .. tostring(n), 0)
	end
	if n == math.floor(n) and math.abs(n) < 2 ^ 53 then
		return string.format('%d', n)
	end
	-- 17 significant digits round-trip any double.
	local s = string.format('%.17g', n)
	local shorter = string.format('%.14g', n)
	if tonumber(shorter) == n then s = shorter end
	return s
end

-- An array is a table whose keys are exactly 1..n.
local function arrayLength(t)
	local n = 0
	for k in pairs(t) do
		if type(k) ~= 'number' or k < 1 or k ~= math.floor(k) then return nil end
		if k > n then n = k end
	end
	for i = 1, n do
		if t[i] == nil then return nil end
	end
	return n
end

local encodeValue

local function encodeTable(t, seen)
	if seen[t] then error("JSON cannot encode a table that contains itself", 0) end
	seen[t] = true
	local out
	local n = arrayLength(t)
	if n and (n > 0 or getmetatable(t) == arrayMarker) then
		local items = {}
		for i = 1, n do items[i] = encodeValue(t[i], seen) end
		out = '[' .. table.concat(items, ',') .. ']'
	else
		local keys = {}
		for k in pairs(t) do
			if type(k) ~= 'string' then
				error("JSON object keys must be strings, got " .. type(k), 0)
			end
			keys[#keys + 1] = k
		end
		table.sort(keys)
		local items = {}
		for i, k in ipairs(keys) do
			items[i] = encodeString(k) .. ':' .. encodeValue(t[k], seen)
		end
		out = '{' .. table.concat(items, ',') .. '}'
	end
	seen[t] = nil
	return out
end

function encodeValue(v, seen)
	local kind = type(v)
	if v == nil or v == JSON.null then return 'null' end
	if kind == 'boolean' then return tostring(v) end
	if kind == 'number' then return encodeNumber(v) end
	if kind == 'string' then return encodeString(v) end
	if kind == 'table' then return encodeTable(v, seen) end
	error("JSON cannot encode a " .. kind, 0)
end

function JSON.encode(value)
	return encodeValue(value, {})
end

-- Decoding -------------------------------------------------------------------

local function utf8(code)
	if code < 0x80 then return string.char(code) end
	if code < 0x800 then
		return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
	end
	if code < 0x10000 then
		return string.char(0xE0 + math.floor(code / 0x1000),
			0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
	end
	return string.char(0xF0 + math.floor(code / 0x40000),
		0x80 + math.floor(code / 0x1000) % 0x40,
		0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local Decoder = {}
Decoder.__index = Decoder

function Decoder:fail(what)
	error({ json = true, message = string.format("%s at character %d", what, self.pos) }, 0)
end

function Decoder:skip()
	self.pos = self.text:find('[^ \t\r\n]', self.pos) or (#self.text + 1)
end

function Decoder:peek()
	return self.text:sub(self.pos, self.pos)
end

function Decoder:literal(word, value)
	if self.text:sub(self.pos, self.pos + #word - 1) ~= word then
		self:fail("unexpected '" .. self:peek() .. "'")
	end
	self.pos = self.pos + #word
	return value
end

function Decoder:number()
	local text, start = self.text, self.pos
	local int = text:match('^-?%d+', start)
	-- JSON forbids leading zeros ("01"), a bare dot ("1.") and a dangling exponent ("1e").
	if not int or int:match('^-?0%d') then self:fail("bad number") end
	local pos = start + #int
	if text:sub(pos, pos) == '.' then
		local frac = text:match('^%.%d+', pos)
		if not frac then self:fail("bad number") end
		pos = pos + #frac
	end
	if text:sub(pos, pos):match('[eE]') then
		local exp = text:match('^[eE][-+]?%d+', pos)
		if not exp then self:fail("bad number") end
		pos = pos + #exp
	end
	self.pos = pos
	return tonumber(text:sub(start, pos - 1))
end

function Decoder:hex4()
	local h = self.text:sub(self.pos, self.pos + 3)
	if not h:match('^%x%x%x%x$') then self:fail("bad \\u escape") end
	self.pos = self.pos + 4
	return tonumber(h, 16)
end

local simpleEscapes = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }

function Decoder:string()
	self.pos = self.pos + 1 -- opening quote
	local parts = {}
	while true do
		local stop = self.text:find('["\\%c]', self.pos)
		if not stop then self:fail("unterminated string") end
		parts[#parts + 1] = self.text:sub(self.pos, stop - 1)
		local c = self.text:sub(stop, stop)
		self.pos = stop + 1
		if c == '"' then break end
		if c ~= '\\' then self.pos = stop; self:fail("control character in string") end
		local e = self.text:sub(self.pos, self.pos)
		self.pos = self.pos + 1
		if simpleEscapes[e] then
			parts[#parts + 1] = simpleEscapes[e]
		elseif e == 'u' then
			local code = self:hex4()
			if code >= 0xD800 and code <= 0xDBFF and self.text:sub(self.pos, self.pos + 1) == '\\u' then
				self.pos = self.pos + 2
				local low = self:hex4()
				if low >= 0xDC00 and low <= 0xDFFF then
					code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
				else
					parts[#parts + 1] = utf8(0xFFFD)
					code = low
				end
			end
			if code >= 0xD800 and code <= 0xDFFF then code = 0xFFFD end -- lone surrogate
			parts[#parts + 1] = utf8(code)
		else
			self:fail("bad escape '\\" .. e .. "'")
		end
	end
	return table.concat(parts)
end

function Decoder:array()
	self.pos = self.pos + 1
	local result, n = JSON.array({}), 0
	self:skip()
	if self:peek() == ']' then self.pos = self.pos + 1; return result end
	while true do
		n = n + 1
		result[n] = self:value()
		self:skip()
		local c = self:peek()
		self.pos = self.pos + 1
		if c == ']' then return result end
		if c ~= ',' then self.pos = self.pos - 1; self:fail("expected ',' or ']'") end
	end
end

function Decoder:object()
	self.pos = self.pos + 1
	local result = {}
	self:skip()
	if self:peek() == '}' then self.pos = self.pos + 1; return result end
	while true do
		self:skip()
		if self:peek() ~= '"' then self:fail("expected a string key") end
		local key = self:string()
		self:skip()
		if self:peek() ~= ':' then self:fail("expected ':'") end
		self.pos = self.pos + 1
		result[key] = self:value()
		self:skip()
		local c = self:peek()
		self.pos = self.pos + 1
		if c == '}' then return result end
		if c ~= ',' then self.pos = self.pos - 1; self:fail("expected ',' or '}'") end
	end
end

function Decoder:value()
	self.depth = self.depth + 1
	if self.depth > 200 then self:fail("nesting too deep") end
	self:skip()
	local c = self:peek()
	local v
	if c == '{' then v = self:object()
	elseif c == '[' then v = self:array()
	elseif c == '"' then v = self:string()
	elseif c == 't' then v = self:literal('true', true)
	elseif c == 'f' then v = self:literal('false', false)
	elseif c == 'n' then v = self:literal('null', JSON.null)
	elseif c == '-' or c:match('%d') then v = self:number()
	elseif c == '' then self:fail("unexpected end of text")
	else self:fail("unexpected '" .. c .. "'") end
	self.depth = self.depth - 1
	return v
end

function JSON.decode(text)
	if type(text) ~= 'string' then
		return nil, "JSON text must be a string, got " .. type(text)
	end
	local decoder = setmetatable({ text = text, pos = 1, depth = 0 }, Decoder)
	local ok, result = pcall(function()
		local v = decoder:value()
		decoder:skip()
		if decoder.pos <= #text then decoder:fail("trailing characters") end
		return v
	end)
	if ok then return result end
	if type(result) == 'table' and result.json then return nil, result.message end
	return nil, tostring(result)
end

return JSON
