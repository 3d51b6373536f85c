--[[ Runs one file through the planned bridge steps and writes the result safely.

Enhancer.enhanceFile {
  client = BridgeClient, input = path, output = path, plan = EnhanceSettings.plan(...),
  output_format = { format = 'jpeg', quality = 92 },
  onStep = function(i, n, step) end,        -- optional, for progress captions
  isCanceled = function() return bool end,  -- optional: checked before each step and while a
                                            -- recipe job runs; a cancelled photo is left as it was
} -> true | nil, message, problem (BridgeClient's, when the bridge said no)

A recipe step ({ recipeText = ..., label = ... }, see Enhancer.loadRecipes) runs as one
bridge job (POST /v1/recipes/run) in place of single operations.

Between steps the image travels as TIFF (lossless, 16-bit, ICC and EXIF kept);
only the last step asks for the format the user wants on disk. XMP and IPTC that
Lightroom wrote into the render are carried into the result (Metadata.lua).
The result is written next to `output` under a temporary name and renamed over it
only once complete, so a failure never leaves a half-written file where the
user's file was: `output` is either untouched or fully replaced.
]]

local LrPathUtils = import 'LrPathUtils'
local LrFileUtils = import 'LrFileUtils'
local LrTasks = import 'LrTasks'

local Metadata = require 'Metadata'

local Enhancer = {}

local MAGIC = {
	jpeg = function(b) return b:sub(1, 3) == '\255\216\255' end,
	png = function(b) return b:sub(1, 8) == '\137PNG\r\n\26\n' end,
	tiff = function(b)
		local h = b:sub(1, 4)
		-- classic TIFF and BigTIFF, both byte orders
		return h == 'II*\0' or h == 'MM\0*' or h == 'II+\0' or h == 'MM\0+'
	end,
	webp = function(b) return b:sub(1, 4) == 'RIFF' and b:sub(9, 12) == 'WEBP' end,
}

function Enhancer.looksLike(format, bytes)
	local check = MAGIC[format]
	return check == nil or check(bytes)
end

local tempCounter = 0

-- A name in the same folder (so the final rename stays on one volume), hidden, unique.
function Enhancer.tempPathBeside(path, tag)
	tempCounter = tempCounter + 1
	local dir, leaf = LrPathUtils.parent(path), LrPathUtils.leafName(path)
	local candidate
	repeat
		candidate = LrPathUtils.child(dir, string.format('.%s.%s-%d-%d.part', leaf, tag or 'rb',
			os.time(), tempCounter))
		tempCounter = tempCounter + 1
	until not LrFileUtils.exists(candidate)
	return candidate
end

local CHUNK = 1024 * 1024

-- Writes `content` to an open file: a string, or a Metadata plan (string ranges written in
-- chunks so a big result is never copied whole, then small patches at given offsets).
local function writeContent(f, content)
	if type(content) == 'string' then return f:write(content) end
	for _, piece in ipairs(content.pieces) do
		local s, first, last = piece[1], piece[2], piece[3]
		for pos = first, last, CHUNK do
			local ok, err = f:write(s:sub(pos, math.min(pos + CHUNK - 1, last)))
			if not ok then return nil, err end
		end
	end
	for _, patch in ipairs(content.patches or {}) do
		f:seek('set', patch.offset)
		local ok, err = f:write(patch.data)
		if not ok then return nil, err end
	end
	return true
end

-- Writes content (a string or a Metadata plan) to path: temp file, size check, then
-- rename into place.
function Enhancer.writeAtomically(path, content)
	local expected = type(content) == 'string' and #content or content.size
	local temp = Enhancer.tempPathBeside(path, 'rb-write')
	local f, err = io.open(temp, 'wb')
	if not f then return nil, string.format('cannot write in %s (%s)', LrPathUtils.parent(path), tostring(err)) end
	local ok, writeErr = writeContent(f, content)
	local closed, closeErr = f:close()
	local attrs = LrFileUtils.fileAttributes(temp)
	if not ok or not closed or not attrs or attrs.fileSize ~= expected then
		LrFileUtils.delete(temp)
		return nil, string.format('could not write %s (%s)', path, tostring(writeErr or closeErr or 'short write'))
	end
	-- POSIX rename replaces the file in one step.
	if type(os.rename) == 'function' and os.rename(temp, path) then return true end
	if not LrFileUtils.exists(path) then
		if LrFileUtils.move(temp, path) ~= false and LrFileUtils.exists(path) then return true end
	else
		-- Windows (or no os.rename): nothing replaces an existing file, so park the old one,
		-- move the new one in, and put the old one back if that fails.
		local aside = Enhancer.tempPathBeside(path, 'rb-old')
		LrFileUtils.move(path, aside)
		if not LrFileUtils.exists(path) then
			LrFileUtils.move(temp, path)
			if LrFileUtils.exists(path) and not LrFileUtils.exists(temp) then
				LrFileUtils.delete(aside)
				return true
			end
			LrFileUtils.move(aside, path)
		end
	end
	LrFileUtils.delete(temp)
	return nil, 'could not replace ' .. path
end

Enhancer.MAX_RECIPE_BYTES = 256 * 1024   -- a recipe is a few lines; anything bigger is the wrong file

-- Reads each recipe step's file into step.recipeText. Returns true, or nil and a message for
-- the user. Done once before the first photo, so a missing file fails fast and alike for all.
function Enhancer.loadRecipes(plan)
	for _, step in ipairs(plan) do
		if step.recipePath and not step.recipeText then
			local path = step.recipePath
			if LrFileUtils.exists(path) ~= 'file' then
				return nil, string.format('The recipe file %s does not exist. Choose it again in the AI Enhance settings.', path)
			end
			local attrs = LrFileUtils.fileAttributes(path)
			if attrs and attrs.fileSize and attrs.fileSize > Enhancer.MAX_RECIPE_BYTES then
				return nil, string.format('%s is too large to be a recipe (a TOML or JSON file, see docs/RECIPES.md).', path)
			end
			local ok, text = LrTasks.pcall(LrFileUtils.readFile, path)
			if not ok or type(text) ~= 'string' or not text:find('%S') then
				return nil, string.format('The recipe file %s could not be read (%s).', path,
					ok and 'it is empty' or tostring(text))
			end
			step.recipeText = text
		end
	end
	return true
end

function Enhancer.enhanceFile(args)
	local client, plan = args.client, args.plan
	local out = args.output_format
	assert(client and plan and out and args.input and args.output, 'enhanceFile: missing arguments')
	if LrFileUtils.exists(args.input) ~= 'file' then
		return nil, 'Could not read the rendered photo: no file at ' .. tostring(args.input)
	end
	if #plan == 0 then return nil, 'No AI Enhance step is selected.' end
	-- The first step streams the render from disk; later steps send the previous answer.
	local image = { path = args.input }
	local bytes
	local name = LrPathUtils.leafName(args.input)
	for i, step in ipairs(plan) do
		if args.isCanceled and args.isCanceled() then return nil, 'Cancelled.', { kind = 'cancelled' } end
		if args.onStep then args.onStep(i, #plan, step) end
		local last = i == #plan
		local output = { format = last and out.format or 'tiff', quality = last and out.quality or nil }
		local result, info
		if step.recipePath or step.recipeText then
			assert(step.recipeText, 'enhanceFile: call Enhancer.loadRecipes(plan) first')
			result, info = client:runRecipe(step.recipeText, image, name, output, { isCanceled = args.isCanceled })
		else
			result, info = client:runOperation(step.op, step.params, image, name, output)
		end
		if not result then
			if info and info.kind == 'cancelled' then return nil, 'Cancelled.', info end
			return nil, string.format('%s failed: %s', step.label or step.op, client:describe(info)), info
		end
		local expected = last and out.format or 'tiff'
		if not Enhancer.looksLike(expected, result) then
			return nil, string.format('%s failed: the bridge sent back something that is not a %s file. '
				.. 'See the bridge log.', step.label or step.op, expected:upper())
		end
		bytes, image, name = result, result, string.format('step%d.tif', i)
	end
	-- Keywords, captions and IPTC fields Lightroom wrote into the render, if the bridge dropped them.
	local content = Metadata.plan(bytes, Metadata.read(args.input)) or bytes
	local ok, writeErr = Enhancer.writeAtomically(args.output, content)
	if not ok then return nil, 'Could not save the enhanced photo: ' .. writeErr end
	return true
end

return Enhancer
