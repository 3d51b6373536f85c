--[[ Reads what the specs check in an image file: format, width, height, bits per
sample, samples per pixel and the embedded ICC profile. TIFF (both byte orders),
PNG and baseline/progressive JPEG; enough to verify the plugin's output. ]]

local ImageInfo = {}

local function readAll(path)
	local f = assert(io.open(path, 'rb'))
	local data = f:read('*a')
	f:close()
	return data
end

local function u16(data, pos, little)
	local a, b = data:byte(pos, pos + 1)
	if little then return a + b * 256 end
	return a * 256 + b
end

local function u32(data, pos, little)
	local a, b, c, d = data:byte(pos, pos + 3)
	if little then return a + b * 256 + c * 65536 + d * 16777216 end
	return ((a * 256 + b) * 256 + c) * 256 + d
end

local TYPE_SIZES = { [1] = 1, [2] = 1, [3] = 2, [4] = 4, [7] = 1 }

local function tiff(data)
	local little = data:sub(1, 2) == 'II'
	local ifd = u32(data, 5, little) + 1
	local count = u16(data, ifd, little)
	local tags = {}
	for i = 0, count - 1 do
		local entry = ifd + 2 + i * 12
		local tag, kind, n = u16(data, entry, little), u16(data, entry + 2, little), u32(data, entry + 4, little)
		local size = (TYPE_SIZES[kind] or 4) * n
		local valuePos = size <= 4 and (entry + 8) or (u32(data, entry + 8, little) + 1)
		local first
		if kind == 3 then first = u16(data, valuePos, little)
		elseif kind == 4 then first = u32(data, valuePos, little)
		else first = data:byte(valuePos) end
		tags[tag] = { kind = kind, count = n, first = first, pos = valuePos, size = size }
	end
	local info = {
		format = 'tiff',
		width = tags[256] and tags[256].first,
		height = tags[257] and tags[257].first,
		bits = tags[258] and tags[258].first or 1,
		channels = tags[277] and tags[277].first or 1,
	}
	local function bytes(tag)
		local t = tags[tag]
		return t and data:sub(t.pos, t.pos + t.size - 1)
	end
	info.icc = bytes(34675)
	info.xmp = bytes(700)
	info.iptc = bytes(33723)
	info.hasExif = tags[34665] ~= nil
	return info
end

local function png(data)
	local info = {
		format = 'png',
		width = u32(data, 17, false),
		height = u32(data, 21, false),
		bits = data:byte(25),
	}
	local colorType = data:byte(26)
	info.channels = ({ [0] = 1, [2] = 3, [3] = 1, [4] = 2, [6] = 4 })[colorType]
	local pos = 9
	while pos < #data do
		local len = u32(data, pos, false)
		local kind = data:sub(pos + 4, pos + 7)
		if kind == 'iCCP' then info.hasIcc = true end
		if kind == 'eXIf' then info.hasExif = true end
		pos = pos + 12 + len
	end
	return info
end

local function jpeg(data)
	local info = { format = 'jpeg', bits = 8 }
	local iccChunks = {}
	local pos = 3
	while pos < #data do
		if data:byte(pos) ~= 0xFF then break end
		local marker = data:byte(pos + 1)
		if marker == 0xD9 or marker == 0xDA then break end
		local len = u16(data, pos + 2, false)
		local segment = data:sub(pos + 4, pos + 1 + len)
		if marker >= 0xC0 and marker <= 0xCF and marker ~= 0xC4 and marker ~= 0xC8 and marker ~= 0xCC then
			info.bits = segment:byte(1)
			info.height = u16(segment, 2, false)
			info.width = u16(segment, 4, false)
			info.channels = segment:byte(6)
		elseif marker == 0xE2 and segment:sub(1, 12) == 'ICC_PROFILE\0' then
			iccChunks[segment:byte(13)] = segment:sub(15)
		elseif marker == 0xE1 and segment:sub(1, 6) == 'Exif\0\0' then
			info.hasExif = true
		elseif marker == 0xE1 and segment:sub(1, 29) == 'http://ns.adobe.com/xap/1.0/\0' then
			info.xmp = segment:sub(30)
		elseif marker == 0xED and segment:sub(1, 14) == 'Photoshop 3.0\0' then
			info.photoshop = segment:sub(15)
		end
		pos = pos + 2 + len
	end
	if #iccChunks > 0 then info.icc = table.concat(iccChunks) end
	return info
end

function ImageInfo.fromBytes(data)
	local head = data:sub(1, 4)
	if head == 'II*\0' or head == 'MM\0*' then return tiff(data) end
	if data:sub(1, 8) == '\137PNG\r\n\26\n' then return png(data) end
	if data:sub(1, 2) == '\255\216' then return jpeg(data) end
	return nil, 'unknown image format'
end

function ImageInfo.read(path)
	return ImageInfo.fromBytes(readAll(path))
end

ImageInfo.readAll = readAll

return ImageInfo
