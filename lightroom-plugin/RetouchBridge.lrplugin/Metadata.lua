--[[ Carries Lightroom's XMP and IPTC from the rendered file into the enhanced one.

The bridge keeps EXIF and ICC when it encodes, but keywords, titles, captions and
the IPTC contact fields Lightroom writes live in XMP and IPTC blocks. We copy them
from the render into the result when the result lacks them:

  source: JPEG (APP1 XMP, APP13 Photoshop/IPTC) or TIFF (tags 700 XMP, 33723 IPTC,
          34377 Photoshop resources)
  result: JPEG (new APP1 and APP13 segments after the EXIF/ICC ones) or classic TIFF
          (IFD0 rewritten at the end of the file with the two extra tags); PNG results
          are left as the bridge wrote them.

Metadata.read(path) -> { xmp = bytes?, iptc = bytes?, photoshop = bytes? } (never raises)
Metadata.plan(resultBytes, meta) -> { pieces = {...}, size = n, patches = {...} } | nil
  what Enhancer.writeAtomically writes instead of resultBytes; nil when nothing to add.
]]

local Metadata = {}

local XMP_HEADER = 'http://ns.adobe.com/xap/1.0/\0'
local PHOTOSHOP_HEADER = 'Photoshop 3.0\0'
local MAX_SEGMENT = 65533 -- a JPEG segment's payload, length bytes excluded

-- Byte helpers (Lua 5.1: no bit operators) -------------------------------------

local function u16(s, pos, little)
	local a, b = s:byte(pos, pos + 1)
	if not b then return nil end
	if little then return a + b * 256 end
	return a * 256 + b
end

local function u32(s, pos, little)
	local a, b, c, d = s:byte(pos, pos + 3)
	if not d then return nil end
	if little then return a + b * 256 + c * 65536 + d * 16777216 end
	return ((a * 256 + b) * 256 + c) * 256 + d
end

local function put16(n, little)
	local hi, lo = math.floor(n / 256) % 256, n % 256
	if little then return string.char(lo, hi) end
	return string.char(hi, lo)
end

local function put32(n, little)
	local b1, b2, b3, b4 = n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
		math.floor(n / 16777216) % 256
	if little then return string.char(b1, b2, b3, b4) end
	return string.char(b4, b3, b2, b1)
end

local function readAt(f, pos, n)
	f:seek('set', pos - 1)
	return f:read(n) or ''
end

-- Reading the source ---------------------------------------------------------------

local function readJpeg(f)
	local meta = {}
	local pos = 3
	while true do
		local head = readAt(f, pos, 4)
		if #head < 4 or head:byte(1) ~= 0xFF then break end
		local marker = head:byte(2)
		if marker == 0xDA or marker == 0xD9 then break end -- image data starts: no more metadata
		local len = u16(head, 3, false)
		if marker == 0xE1 or marker == 0xED then
			local payload = readAt(f, pos + 4, len - 2)
			if marker == 0xE1 and payload:sub(1, #XMP_HEADER) == XMP_HEADER then
				meta.xmp = payload:sub(#XMP_HEADER + 1)
			elseif marker == 0xED and payload:sub(1, #PHOTOSHOP_HEADER) == PHOTOSHOP_HEADER then
				meta.photoshop = payload:sub(#PHOTOSHOP_HEADER + 1)
			end
		end
		pos = pos + 2 + len
	end
	return meta
end

local TYPE_SIZES = { [1] = 1, [2] = 1, [3] = 2, [4] = 4, [7] = 1, [16] = 8 }

local function tiffTags(f, little, ifdOffset)
	local tags = {}
	local countBytes = readAt(f, ifdOffset + 1, 2)
	local count = u16(countBytes, 1, little)
	if not count then return tags end
	local entries = readAt(f, ifdOffset + 3, count * 12)
	for i = 0, count - 1 do
		local e = i * 12 + 1
		local tag, kind, n = u16(entries, e, little), u16(entries, e + 2, little), u32(entries, e + 4, little)
		if not n then break end
		local size = (TYPE_SIZES[kind] or 1) * n
		local value
		if size <= 4 then value = entries:sub(e + 8, e + 7 + size)
		else value = function() return readAt(f, u32(entries, e + 8, little) + 1, size) end end
		tags[tag] = { kind = kind, count = n, value = value }
	end
	return tags
end

local function readTiff(f)
	local header = readAt(f, 1, 8)
	local little = header:sub(1, 2) == 'II'
	local tags = tiffTags(f, little, u32(header, 5, little))
	local function bytes(tag)
		local t = tags[tag]
		if not t then return nil end
		if type(t.value) == 'function' then return t.value() end
		return t.value
	end
	local iptc = bytes(33723)
	-- IPTC-NAA is stored as LONGs by some writers; the bytes are the same records.
	return { xmp = bytes(700), iptc = iptc, photoshop = bytes(34377) }
end

function Metadata.read(path)
	local f = io.open(path, 'rb')
	if not f then return {} end
	local ok, meta = pcall(function()
		local head = f:read(4) or ''
		if head:sub(1, 2) == '\255\216' then return readJpeg(f) end
		if head == 'II*\0' or head == 'MM\0*' then return readTiff(f) end
		return {}
	end)
	f:close()
	return ok and meta or {}
end

-- Photoshop image resources ("8BIM" blocks) holding IPTC: from a JPEG's APP13 as is,
-- or built around a TIFF's raw IPTC-NAA records (resource 0x0404).
local function photoshopResources(meta)
	if meta.photoshop and meta.photoshop:find('8BIM\4\4', 1, true) then return meta.photoshop end
	if meta.iptc and #meta.iptc > 0 then
		local data = meta.iptc
		if #data % 2 == 1 then data = data .. '\0' end
		return '8BIM' .. put16(0x0404, false) .. '\0\0' .. put32(#meta.iptc, false) .. data
	end
	return nil
end

-- Raw IPTC-NAA records, for a TIFF's tag 33723.
local function iptcRecords(meta)
	if meta.iptc and #meta.iptc > 0 then return meta.iptc end
	local ps = meta.photoshop
	if not ps then return nil end
	local pos = 1
	while pos + 12 <= #ps and ps:sub(pos, pos + 3) == '8BIM' do
		local id = u16(ps, pos + 4, false)
		local nameLen = ps:byte(pos + 6)
		local nameSize = nameLen + 1
		if nameSize % 2 == 1 then nameSize = nameSize + 1 end
		local sizePos = pos + 6 + nameSize
		local size = u32(ps, sizePos, false)
		if not size then return nil end
		if id == 0x0404 then return ps:sub(sizePos + 4, sizePos + 3 + size) end
		pos = sizePos + 4 + size + (size % 2)
	end
	return nil
end

-- Writing the result -------------------------------------------------------------------

local function segment(marker, payload)
	return string.char(0xFF, marker) .. put16(#payload + 2, false) .. payload
end

local function planJpeg(result, meta)
	local hasXmp, hasIptc = false, false
	local insertAt = 3
	local pos = 3
	while pos + 3 <= #result and result:byte(pos) == 0xFF do
		local marker = result:byte(pos + 1)
		if marker == 0xDA or marker == 0xD9 then break end
		local len = u16(result, pos + 2, false)
		local payloadStart = pos + 4
		if marker == 0xE1 and result:sub(payloadStart, payloadStart + #XMP_HEADER - 1) == XMP_HEADER then
			hasXmp = true
		elseif marker == 0xED and result:sub(payloadStart, payloadStart + #PHOTOSHOP_HEADER - 1) == PHOTOSHOP_HEADER then
			hasIptc = true
		end
		-- New segments go after APP0 (JFIF), APP1 (EXIF) and APP2 (ICC), where readers expect them.
		if marker >= 0xE0 and marker <= 0xE2 then insertAt = pos + 2 + len end
		pos = pos + 2 + len
	end
	local added = {}
	if not hasXmp and meta.xmp and #XMP_HEADER + #meta.xmp <= MAX_SEGMENT then
		added[#added + 1] = segment(0xE1, XMP_HEADER .. meta.xmp)
	end
	local resources = not hasIptc and photoshopResources(meta)
	if resources and #PHOTOSHOP_HEADER + #resources <= MAX_SEGMENT then
		added[#added + 1] = segment(0xED, PHOTOSHOP_HEADER .. resources)
	end
	if #added == 0 then return nil end
	local extra = table.concat(added)
	return {
		pieces = { { result, 1, insertAt - 1 }, { extra, 1, #extra }, { result, insertAt, #result } },
		size = #result + #extra,
		patches = {},
	}
end

local function planTiff(result, meta)
	local little = result:sub(1, 2) == 'II'
	if u16(result, 3, little) ~= 42 then return nil end -- BigTIFF: left alone
	local ifd = u32(result, 5, little)
	local count = ifd and u16(result, ifd + 1, little)
	if not count then return nil end
	local entries, present = {}, {}
	for i = 0, count - 1 do
		local e = ifd + 3 + i * 12
		local raw = result:sub(e, e + 11)
		local tag = u16(raw, 1, little)
		entries[#entries + 1] = { tag = tag, raw = raw }
		present[tag] = true
	end
	local nextIfd = result:sub(ifd + 3 + count * 12, ifd + 6 + count * 12)
	local blobs, size = {}, #result
	local function pad()
		if size % 2 == 1 then blobs[#blobs + 1] = '\0'; size = size + 1 end
	end
	local function addTag(tag, kind, data)
		local value
		if #data <= 4 then
			value = data .. string.rep('\0', 4 - #data)
		else
			pad()
			value = put32(size, little)
			blobs[#blobs + 1] = data
			size = size + #data
		end
		local raw = put16(tag, little) .. put16(kind, little) .. put32(#data, little) .. value
		entries[#entries + 1] = { tag = tag, raw = raw }
	end
	if not present[700] and meta.xmp and #meta.xmp > 0 then addTag(700, 1, meta.xmp) end
	local records = not present[33723] and iptcRecords(meta)
	if records then addTag(33723, 7, records) end
	if #entries == count then return nil end
	table.sort(entries, function(a, b) return a.tag < b.tag end)
	pad()
	local newIfd = size
	local parts = { put16(#entries, little) }
	for _, entry in ipairs(entries) do parts[#parts + 1] = entry.raw end
	parts[#parts + 1] = nextIfd
	blobs[#blobs + 1] = table.concat(parts)
	local extra = table.concat(blobs)
	if #result + #extra >= 4294967296 then return nil end
	return {
		pieces = { { result, 1, #result }, { extra, 1, #extra } },
		size = #result + #extra,
		-- the header's IFD0 offset now points at the rewritten directory
		patches = { { offset = 4, data = put32(newIfd, little) } },
	}
end

function Metadata.plan(result, meta)
	if not meta or not (meta.xmp or meta.iptc or meta.photoshop) then return nil end
	local ok, plan = pcall(function()
		if result:sub(1, 3) == '\255\216\255' then return planJpeg(result, meta) end
		local head = result:sub(1, 4)
		if head == 'II*\0' or head == 'MM\0*' then return planTiff(result, meta) end
		return nil
	end)
	return ok and plan or nil
end

return Metadata
