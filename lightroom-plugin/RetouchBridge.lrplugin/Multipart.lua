--[[ multipart/form-data bodies (RFC 7578), built as one string for LrHttp.post.

Multipart.build(parts [, boundary]) -> body, contentType
  parts: array of { name = "image", value = bytes, fileName = "x.tif" (optional),
                    contentType = "image/tiff" (optional) }

We build the body ourselves instead of using LrHttp.postMultipart so that every
part (the JSON `params` part included) carries an exact Content-Type and the
bytes are sent exactly as read, with a Content-Length Lightroom cannot guess wrong.
]]

local Multipart = {}

local CRLF = '\r\n'

local function quoted(s)
	-- Quotes and line breaks would end the header value early; the name is ours and
	-- file names come from disk, so replace rather than fail.
	return '"' .. tostring(s):gsub('[\r\n"]', '_') .. '"'
end

local boundaryCounter = 0

function Multipart.newBoundary()
	boundaryCounter = boundaryCounter + 1
	local hex = {}
	for i = 1, 24 do hex[i] = string.format('%x', math.random(0, 15)) end
	return string.format('RetouchBridge-%s-%d-%d', table.concat(hex), os.time(), boundaryCounter)
end

local function contains(parts, boundary)
	for _, part in ipairs(parts) do
		if tostring(part.value):find(boundary, 1, true) then return true end
	end
	return false
end

function Multipart.build(parts, boundary)
	assert(type(parts) == 'table' and #parts > 0, "multipart needs at least one part")
	if boundary then
		assert(not contains(parts, boundary), "boundary occurs inside a part")
	else
		repeat boundary = Multipart.newBoundary() until not contains(parts, boundary)
	end
	local chunks = {}
	for _, part in ipairs(parts) do
		assert(part.name, "every part needs a name")
		local disposition = 'Content-Disposition: form-data; name=' .. quoted(part.name)
		if part.fileName then
			disposition = disposition .. '; filename=' .. quoted(part.fileName)
		end
		chunks[#chunks + 1] = '--' .. boundary .. CRLF .. disposition .. CRLF
		if part.contentType then
			chunks[#chunks + 1] = 'Content-Type: ' .. part.contentType .. CRLF
		end
		chunks[#chunks + 1] = CRLF
		chunks[#chunks + 1] = tostring(part.value)
		chunks[#chunks + 1] = CRLF
	end
	chunks[#chunks + 1] = '--' .. boundary .. '--' .. CRLF
	return table.concat(chunks), 'multipart/form-data; boundary=' .. boundary
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
