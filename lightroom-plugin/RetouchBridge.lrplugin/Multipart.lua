--[[ multipart/form-data bodies (RFC 7578) for LrHttp.post.

Multipart.stream(parts [, boundary]) -> getter, totalSize, contentType
  A byte-getter for LrHttp.post(url, getter, headers, 'POST', timeout, totalSize)
  (Lightroom 4.1+): it hands out the body piece by piece and nil at the end, so a
  300 MB 16-bit render is read from disk in 1 MiB chunks, never held whole in memory.
Multipart.build(parts [, boundary]) -> body, contentType   the same bytes as one string

  parts: array of { name = "image", value = bytes | filePath = path,
                    fileName = "x.tif" (optional), contentType = "image/tiff" (optional) }

We build the body ourselves instead of using LrHttp.postMultipart so that every
part (the JSON `params` part included) carries an exact Content-Type and streams.
]]

local Multipart = {}

local CRLF = '\r\n'
local CHUNK = 1024 * 1024

local function quoted(s)
	-- Quotes and line breaks would end the header value early; the name is ours and
	-- file names come from disk, so replace rather than fail.
	return '"' .. tostring(s):gsub('[\r\n"]', '_') .. '"'
end

local boundaryCounter = 0

-- 96 random bits: a file part is never scanned for the boundary, and the chance
-- that a photo contains it is nil in practice; string parts are checked.
function Multipart.newBoundary()
	boundaryCounter = boundaryCounter + 1
	local hex = {}
	for i = 1, 24 do hex[i] = string.format('%x', math.random(0, 15)) end
	return string.format('RetouchBridge-%s-%d-%d', table.concat(hex), os.time(), boundaryCounter)
end

local function contains(parts, boundary)
	for _, part in ipairs(parts) do
		if part.value ~= nil and tostring(part.value):find(boundary, 1, true) then return true end
	end
	return false
end

local function fileSize(path)
	local f, err = io.open(path, 'rb')
	if not f then error('cannot read ' .. tostring(path) .. ': ' .. tostring(err), 0) end
	local size = f:seek('end')
	f:close()
	return size
end

function Multipart.stream(parts, boundary)
	assert(type(parts) == 'table' and #parts > 0, "multipart needs at least one part")
	if boundary then
		assert(not contains(parts, boundary), "boundary occurs inside a part")
	else
		repeat boundary = Multipart.newBoundary() until not contains(parts, boundary)
	end
	-- The body as a list of pieces: strings, or { path, size } for file contents.
	local pieces, total = {}, 0
	local function add(piece, size)
		pieces[#pieces + 1] = piece
		total = total + size
	end
	for _, part in ipairs(parts) do
		assert(part.name, "every part needs a name")
		assert(part.value ~= nil or part.filePath, "every part needs a value or a filePath")
		local head = '--' .. boundary .. CRLF .. 'Content-Disposition: form-data; name=' .. quoted(part.name)
		if part.fileName then head = head .. '; filename=' .. quoted(part.fileName) end
		head = head .. CRLF
		if part.contentType then head = head .. 'Content-Type: ' .. part.contentType .. CRLF end
		head = head .. CRLF
		add(head, #head)
		if part.filePath then
			local size = fileSize(part.filePath)
			add({ path = part.filePath, size = size }, size)
		else
			local value = tostring(part.value)
			add(value, #value)
		end
		add(CRLF, 2)
	end
	local tail = '--' .. boundary .. '--' .. CRLF
	add(tail, #tail)

	local index, file, remaining = 0, nil, 0
	local function getter()
		while true do
			if file then
				local chunk = remaining > 0 and file:read(math.min(CHUNK, remaining)) or nil
				if chunk and #chunk > 0 then
					remaining = remaining - #chunk
					return chunk
				end
				file:close()
				file = nil
				-- A file that shrank since we measured it would make the body shorter
				-- than announced; fail loudly rather than hang the server.
				if remaining > 0 then error('a file changed size while being sent', 0) end
			end
			index = index + 1
			local piece = pieces[index]
			if piece == nil then return nil end
			if type(piece) == 'string' then
				if #piece > 0 then return piece end
			else
				file = assert(io.open(piece.path, 'rb'))
				remaining = piece.size
			end
		end
	end
	return getter, total, 'multipart/form-data; boundary=' .. boundary
end

function Multipart.build(parts, boundary)
	local getter, _, contentType = Multipart.stream(parts, boundary)
	local chunks = {}
	for chunk in getter do chunks[#chunks + 1] = chunk end
	return table.concat(chunks), contentType
end

-- Splits a body back into parts: used by the specs to check what we send, and
-- handy when debugging against a capture.
function Multipart.parse(body, contentType)
	local boundary = contentType:match('boundary="?([^";]+)"?')
	assert(boundary, "no boundary in " .. contentType)
	local delimiter = '--' .. boundary
	local parts = {}
	local pos = body:find(delimiter, 1, true)
	assert(pos, "body does not start with the boundary")
	pos = pos + #delimiter
	while body:sub(pos, pos + 1) == CRLF do
		local headerEnd = body:find(CRLF .. CRLF, pos + 2, true)
		assert(headerEnd, "part without a header end")
		local part = { headers = {} }
		for line in body:sub(pos + 2, headerEnd - 1):gmatch('[^\r\n]+') do
			local key, value = line:match('^([^:]+):%s*(.*)$')
			part.headers[key:lower()] = value
		end
		local disposition = part.headers['content-disposition'] or ''
		part.name = disposition:match('; name="([^"]*)"')
		part.fileName = disposition:match('; filename="([^"]*)"')
		part.contentType = part.headers['content-type']
		local nextDelimiter = body:find(CRLF .. delimiter, headerEnd + 4, true)
		assert(nextDelimiter, "part without an end")
		part.value = body:sub(headerEnd + 4, nextDelimiter - 1)
		parts[#parts + 1] = part
		pos = nextDelimiter + 2 + #delimiter
	end
	assert(body:sub(pos, pos + 1) == '--', "body does not end with the closing boundary")
	return parts
end

return Multipart
